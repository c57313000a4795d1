// tools/udax/info_cmd.cc — `udax info [--json] DEVICE`: shows what
// ReadInfo (udax/check.h) reads from an unmounted device — geometry, space,
// inodes, features, journal state, bad blocks — as `key: value` lines or one
// JSON object with the same snake_case keys.
//
// The bad-block list (blocks whose memory failed) prints as
//   bad_blocks: N              (number of 4 KiB blocks listed)
//   bad: DEVOFF LEN            (one line per extent, bytes, decimal)
// and in JSON as "bad_blocks": N, "bad_extents": [{"device_offset", "length"}].
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "udax/check.h"

namespace udax::cli {
namespace {

struct InfoArgs {
  std::string device;
  bool json = false;
};

int RunInfo(const InfoArgs& args) {
  Result<FsInfo> result = ReadInfo(args.device);
  if (!result.has_value()) {
    PrintError("info", result.error());
    return 1;
  }
  const FsInfo& i = *result;
  if (args.json) {
    nlohmann::json j;
    j["device"] = args.device;
    j["device_bytes"] = i.device_bytes;
    j["size_bytes"] = i.size_bytes;
    j["block_size"] = i.block_size;
    j["total_blocks"] = i.total_blocks;
    j["free_blocks"] = i.free_blocks;
    j["used_blocks"] = i.used_blocks;
    j["inode_count"] = i.inode_count;
    j["shared_blocks"] = i.shared_blocks;
    j["log_blocks"] = i.log_blocks;
    j["uuid"] = i.uuid;
    j["features"] = i.features;
    j["journal_state"] = i.journal_state;
    j["fences_per_commit"] = i.fences_per_commit;
    j["bad_blocks"] = i.bad_blocks;
    j["bad_extents"] = nlohmann::json::array();
    for (const auto& [off, len] : i.bad_extents)
      j["bad_extents"].push_back({{"device_offset", off}, {"length", len}});
    std::printf("%s\n",
                j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::string features;
  for (const std::string& f : i.features) {
    if (!features.empty()) features += ' ';
    features += f;
  }
  std::printf("device: %s\n", args.device.c_str());
  std::printf("device_bytes: %" PRIu64 "\n", i.device_bytes);
  std::printf("size_bytes: %" PRIu64 "\n", i.size_bytes);
  std::printf("block_size: %u\n", i.block_size);
  std::printf("total_blocks: %" PRIu64 "\n", i.total_blocks);
  std::printf("free_blocks: %" PRIu64 "\n", i.free_blocks);
  std::printf("used_blocks: %" PRIu64 "\n", i.used_blocks);
  std::printf("inode_count: %" PRIu64 "\n", i.inode_count);
  std::printf("shared_blocks: %" PRIu64 "\n", i.shared_blocks);
  std::printf("log_blocks: %" PRIu64 "\n", i.log_blocks);
  std::printf("uuid: %s\n", i.uuid.c_str());
  std::printf("features: %s\n", features.c_str());
  std::printf("journal_state: %s\n", i.journal_state.c_str());
  std::printf("fences_per_commit: %u\n", i.fences_per_commit);
  std::printf("bad_blocks: %" PRIu64 "\n", i.bad_blocks);
  for (const auto& [off, len] : i.bad_extents) std::printf("bad: %" PRIu64 " %" PRIu64 "\n", off, len);
  return 0;
}

}  // namespace

void SetupInfo(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* sub = app.add_subcommand("info", "show geometry, space and journal state of DEVICE");
  sub->add_flag("--json", args->json, "print a JSON object");
  sub->add_option("DEVICE", args->device, "device or image file")->required();
  sub->callback([args, exit_code] { *exit_code = RunInfo(*args); });
}

}  // namespace udax::cli
