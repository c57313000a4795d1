// tools/udax/mkfs_cmd.cc — `udax mkfs [-s SIZE] [-f] DEVICE`: creates a udax
// filesystem on DEVICE (a regular file is created mode 0600, or resized to
// SIZE). Refusing to overwrite an existing filesystem or other data without
// -f, and to follow a symlink to a file, is the library's job
// (Filesystem::Mkfs, PmemDevice's create path); this file parses and reports.
#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "udax/check.h"
#include "udax/fs.h"

namespace udax::cli {
namespace {

struct MkfsArgs {
  std::string device;
  std::string size;  // empty: keep the size of an existing file
  std::string log_blocks;
  bool force = false;
};

int RunMkfs(const MkfsArgs& args) {
  MkfsOptions opts;
  opts.force = args.force;
  if (!args.size.empty()) {
    Status st = ParseNumber(args.size, "size", &opts.size);
    if (st.ok() && opts.size == 0) st = Status::Error(EINVAL, "invalid size '" + args.size + "'");
    if (!st.ok()) {
      PrintError("mkfs", st);
      return 1;
    }
  } else {
    // Without a size the device must exist and have one.
    struct stat sb;
    int rc = ::stat(args.device.c_str(), &sb);
    if (rc != 0 && errno == ENOENT) {
      PrintError("mkfs", Status::Error(ENOENT, args.device +
                                                   ": no such file; give its size with -s SIZE"));
      return 1;
    }
    if (rc == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0) {
      PrintError("mkfs",
                 Status::Error(EINVAL, args.device + ": empty file; give its size with -s SIZE"));
      return 1;
    }
  }
  if (!args.log_blocks.empty()) {
    uint64_t v = 0;
    Status st = ParseNumber(args.log_blocks, "journal size", &v);
    if (st.ok() && v > UINT32_MAX) {
      st = Status::Error(EINVAL, "invalid journal size '" + args.log_blocks + "'");
    }
    if (!st.ok()) {
      PrintError("mkfs", st);
      return 1;
    }
    opts.log_blocks = static_cast<uint32_t>(v);
  }

  Status st = Filesystem::Mkfs(args.device, opts);
  if (!st.ok()) {
    PrintError("mkfs", st);
    return 1;
  }
  Result<FsInfo> info = ReadInfo(args.device);
  if (info.has_value()) {
    std::printf("%s: udax filesystem of %" PRIu64 " bytes: %" PRIu64 " blocks of %u bytes, %" PRIu64
                " free, %" PRIu64 " journal blocks\n",
                args.device.c_str(), info->size_bytes, info->total_blocks, info->block_size,
                info->free_blocks, info->log_blocks);
  } else {
    std::printf("%s: udax filesystem created\n", args.device.c_str());
  }
  return 0;
}

}  // namespace

void SetupMkfs(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MkfsArgs>();
  CLI::App* sub = app.add_subcommand("mkfs", "create a filesystem on DEVICE");
  sub->add_option("-s,--size", args->size,
                  "size of the device in bytes (k/m/g suffixes, 0x hex); "
                  "required when DEVICE does not exist");
  sub->add_flag("-f,--force", args->force, "overwrite an existing udax filesystem or a file holding other data");
  sub->add_option("-l,--log-blocks", args->log_blocks,
                  "journal size in blocks (default: chosen from the size)");
  sub->add_option("DEVICE", args->device, "device or image file")->required();
  sub->callback([args, exit_code] { *exit_code = RunMkfs(*args); });
}

}  // namespace udax::cli
