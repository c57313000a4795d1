// share/channel.cc — the sealed memfd of a channel and its mappings.
#include "share/channel.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "share/sys_error.h"

namespace udax::share {

size_t ChannelBytes() {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (sizeof(ChannelLayout) + page - 1) / page * page;
}

ChannelMapping::ChannelMapping(ChannelMapping&& o) noexcept
    : layout_(std::exchange(o.layout_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

ChannelMapping& ChannelMapping::operator=(ChannelMapping&& o) noexcept {
  if (this != &o) {
    if (layout_) ::munmap(layout_, bytes_);
    layout_ = std::exchange(o.layout_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

ChannelMapping::~ChannelMapping() {
  if (layout_) ::munmap(layout_, bytes_);
}

Result<ChannelMapping> ChannelMapping::Map(int memfd, size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (p == MAP_FAILED) return SysError("mmap channel");
  // A forked child must not share our slots (it would post into them).
  ::madvise(p, bytes, MADV_DONTFORK);
  ChannelMapping m;
  m.layout_ = static_cast<ChannelLayout*>(p);
  m.bytes_ = bytes;
  return m;
}

Result<NewChannel> CreateChannel() {
  NewChannel c;
  c.memfd = UniqueFd(::memfd_create("udax-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!c.memfd.valid()) return SysError("memfd_create");
  const size_t bytes = ChannelBytes();
  if (::ftruncate(c.memfd.get(), static_cast<off_t>(bytes)) != 0) return SysError("ftruncate channel");
  if (::fcntl(c.memfd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return SysError("seal channel");
  ASSIGN_OR_RETURN(c.mapping, ChannelMapping::Map(c.memfd.get(), bytes));
  ChannelHeader& h = c.mapping.layout()->header;
  h.magic = kChannelMagic;
  h.version = kChannelVersion;
  h.request_slots = kRequestSlots;
  h.revocation_slots = kRevocationSlots;
  h.max_payload = kMaxPayload;
  h.layout_bytes = sizeof(ChannelLayout);
  return c;
}

Result<ChannelMapping> OpenChannel(int memfd, size_t announced_bytes) {
  struct stat st{};
  if (::fstat(memfd, &st) != 0) return SysError("fstat channel");
  if (announced_bytes != ChannelBytes() || static_cast<size_t>(st.st_size) != announced_bytes)
    return Errno(EPROTO, "channel is " + std::to_string(st.st_size) + " bytes (announced " +
                             std::to_string(announced_bytes) + "), expected " +
                             std::to_string(ChannelBytes()));
  int seals = ::fcntl(memfd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return Errno(EPROTO, "channel memfd is not sealed");
  ASSIGN_OR_RETURN(ChannelMapping m, ChannelMapping::Map(memfd, announced_bytes));
  const ChannelHeader& h = m.layout()->header;
  if (h.magic != kChannelMagic || h.version != kChannelVersion || h.request_slots != kRequestSlots ||
      h.revocation_slots != kRevocationSlots || h.max_payload != kMaxPayload ||
      h.layout_bytes != sizeof(ChannelLayout))
    return Errno(EPROTO, "channel header: magic/version/geometry of another udax build");
  return m;
}

}  // namespace udax::share
