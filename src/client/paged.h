// client/paged.h — reading an answer that comes in pages (proto/ops.h:
// kReadDir, kFiemap, kBadBlocks, kQueryRmap): each request names the first
// item wanted; each answer is {u8 more, u32 n, n items}.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "client/client_fs.h"

namespace udax::client {

// Asks page after page until the mount says no more follow. `request(first)`
// builds a page's request; `item(r)` decodes one item.
template <typename Item>
Result<std::vector<Item>> ReadPaged(ClientFs& fs, uint32_t op, const char* what,
                                    const std::function<std::vector<uint8_t>(uint64_t first)>& request,
                                    const std::function<Item(proto::Reader&)>& item) {
  std::vector<Item> out;
  for (;;) {
    ASSIGN_OR_RETURN(auto resp, fs.Call(op, request(out.size())));
    proto::Reader r(resp);
    uint8_t more = r.Get<uint8_t>();
    uint32_t n = r.Get<uint32_t>();
    for (uint32_t i = 0; i < n && r.ok(); ++i) out.push_back(item(r));
    RETURN_IF_ERROR(r.Finish(what));
    if (!more) return out;
    if (n == 0) return Errno(EPROTO, std::string(what) + ": the mount said more but sent nothing");
  }
}

}  // namespace udax::client
