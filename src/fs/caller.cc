// fs/caller.cc — who an operation acts for (Caller, CallerScope: a
// thread-local pointer, as the kernel's current_cred()) and the rule that
// kills setuid/setgid when a file's bytes or owner change (Linux's
// setattr_should_drop_suidgid / file_remove_privs).
//
// Invariants: the rule only ever clears bits; it asks the caller's
// capabilities and groups only when the file has S_ISUID or S_ISGID (the
// common case costs one test of the mode).
#include "fs/caller.h"

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace udax {
namespace {
thread_local const Caller* tls_caller = nullptr;

bool ProcessHasFsetid() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[CAP_FSETID / 32].effective & (1u << (CAP_FSETID % 32));
}

bool ProcessInGroup(uint32_t gid) {
  int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = getgroups(n, groups.data());
  for (int i = 0; i < n; i++)
    if (groups[static_cast<size_t>(i)] == gid) return true;
  return false;
}

// The process's own credentials, read when first needed on each use.
Caller ProcessCaller() {
  Caller c;
  c.uid = static_cast<uint32_t>(geteuid());
  c.gid = static_cast<uint32_t>(getegid());
  c.has_fsetid = ProcessHasFsetid;
  c.in_group = ProcessInGroup;
  return c;
}
}  // namespace

CallerScope::CallerScope(const Caller& c) : prev_(tls_caller) { tls_caller = &c; }
CallerScope::~CallerScope() { tls_caller = prev_; }

uint32_t ModeAfterKillPriv(uint32_t mode, uint32_t file_gid, PrivChange change) {
  if (!S_ISREG(mode) || !(mode & (S_ISUID | S_ISGID))) return mode;
  Caller process;
  const Caller* c = tls_caller;
  if (!c) {
    process = ProcessCaller();
    c = &process;
  }
  bool capable = c->has_fsetid && c->has_fsetid();
  if (capable && change == PrivChange::kData) return mode;
  // setattr_should_drop_sgid: a group-executable file's, or when the caller
  // is neither in the file's group nor capable.
  auto drop_sgid = [&] {
    if (!(mode & S_ISGID)) return false;
    if (mode & S_IXGRP) return true;
    return !capable && c->gid != file_gid && !(c->in_group && c->in_group(file_gid));
  };
  uint32_t kill = S_ISUID;  // data changes without CAP_FSETID, and every chown
  if (drop_sgid()) kill |= S_ISGID;
  if (mode & kill) c->privs_killed = true;
  return mode & ~kill;
}

}  // namespace udax
