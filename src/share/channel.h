// share/channel.h — the shared-memory channel's memory: creating the sealed
// memfd (server) and mapping a received one (client). The protocol on it is
// in server_channel.h and client_channel.h; the layout in channel_format.h.
//
// Invariants:
//  * the memfd is exactly ChannelBytes() long and sealed against shrinking
//    and growing before any client sees it (F_SEAL_SHRINK | F_SEAL_GROW |
//    F_SEAL_SEAL), so neither side's accesses can ever fault;
//  * a ChannelMapping unmaps on destruction; the layout pointer is valid for
//    the mapping's whole life; a forked child does not inherit the mapping
//    (MADV_DONTFORK): it would post into its parent's slots.
// Thread safety: a ChannelMapping is immutable once made.
#pragma once

#include <cstddef>

#include "share/channel_format.h"
#include "share/fd.h"
#include "udax/status.h"

namespace udax::share {

// The memfd's size: the layout rounded up to a page.
size_t ChannelBytes();

class ChannelMapping {
 public:
  ChannelMapping() = default;
  ChannelMapping(ChannelMapping&& o) noexcept;
  ChannelMapping& operator=(ChannelMapping&& o) noexcept;
  ~ChannelMapping();

  ChannelLayout* layout() const { return layout_; }
  bool valid() const { return layout_ != nullptr; }

  // Maps `memfd` read-write, shared.
  static Result<ChannelMapping> Map(int memfd, size_t bytes);

 private:
  ChannelLayout* layout_ = nullptr;
  size_t bytes_ = 0;
};

struct NewChannel {
  UniqueFd memfd;
  ChannelMapping mapping;
};

// Server: a fresh, zeroed, sealed channel with its header written.
Result<NewChannel> CreateChannel();

// Client: maps a received memfd after checking its size and header
// (EPROTO: not a channel of this version).
Result<ChannelMapping> OpenChannel(int memfd, size_t announced_bytes);

}  // namespace udax::share
