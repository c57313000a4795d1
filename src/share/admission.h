// share/admission.h — who may be a direct client: the rule, as one function.
//
// A direct client maps the whole device and is trusted with it (as a user of
// a devdax device is), so it is admitted only if it could open the device file
// for reading and writing itself: root (uid 0), or else the one permission
// class that POSIX applies to it — owner (its uid owns the file), else group
// (the file's group is its gid or one of its supplementary groups), else
// other — grants both read and write. ACLs and capabilities other than root's
// are not consulted (documented in docs/shared.md). Everyone else is refused
// with EACCES and told to use the mount.
// Thread safety: pure functions.
#pragma once

#include <sys/stat.h>

#include <string>

#include "share/peer.h"

namespace udax::share {

bool MayReadWrite(const PeerCredentials& who, const struct stat& device);

// "uid U (pid P) may not read and write DEVICE: use the files through the
// mount at ... instead" — the text a refused client reports.
std::string RefusalMessage(const PeerCredentials& who, const std::string& device_name);

}  // namespace udax::share
