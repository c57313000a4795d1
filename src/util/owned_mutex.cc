// util/owned_mutex.cc — the per-thread shared-hold table of OwnedSharedMutex
// (see owned_mutex.h); only in builds with UDAX_ASSERTS.
#include "util/owned_mutex.h"

#if UDAX_ASSERTS_ON
#include <vector>

namespace udax {
namespace {
struct SharedHold {
  const OwnedSharedMutex* mu;
  int depth;
};
// A thread holds few mutexes at once: a short vector, searched linearly.
thread_local std::vector<SharedHold> tls_shared;
}  // namespace

int OwnedSharedMutex::SharedByMe() const {
  for (const SharedHold& h : tls_shared)
    if (h.mu == this) return h.depth;
  return 0;
}

void OwnedSharedMutex::AddShared(int delta) {
  for (size_t i = 0; i < tls_shared.size(); i++) {
    if (tls_shared[i].mu != this) continue;
    tls_shared[i].depth += delta;
    if (tls_shared[i].depth == 0) {
      tls_shared[i] = tls_shared.back();
      tls_shared.pop_back();
    }
    return;
  }
  tls_shared.push_back({this, delta});
}

}  // namespace udax
#endif
