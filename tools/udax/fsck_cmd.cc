// tools/udax/fsck_cmd.cc — `udax fsck [-n] [--json] DEVICE`: runs the offline
// checker (udax/check.h) and prints its report, as text or as one JSON object.
// Without -n it first replays the journal and reclaims orphans (a read-write
// mount); with -n it writes nothing: the device is opened read-only (a 0444
// image will do, other read-only users may hold it too) and the journal is
// replayed in memory only.
// Exit status: 0 when the filesystem is clean, 1 when problems were found or
// the device could not be checked at all.
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

struct FsckArgs {
  std::string device;
  bool json = false;
  bool no_recover = false;
};

nlohmann::json ReportJson(const std::string& device, const FsckReport& r) {
  nlohmann::json j;
  j["device"] = device;
  j["clean"] = r.clean();
  j["problems"] = r.problems;
  j["notes"] = r.notes;
  j["inodes"] = r.inodes;
  j["directories"] = r.directories;
  j["files"] = r.files;
  j["symlinks"] = r.symlinks;
  j["used_blocks"] = r.used_blocks;
  j["free_blocks"] = r.free_blocks;
  j["metadata_blocks"] = r.metadata_blocks;
  j["data_blocks"] = r.data_blocks;
  return j;
}

// JSON text safe for any bytes in problem strings (invalid UTF-8 is replaced).
std::string Dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

int RunFsck(const FsckArgs& args) {
  FsckOptions opts;
  opts.recover = !args.no_recover;
  Result<FsckReport> result = Fsck(args.device, opts);
  if (!result.has_value()) {
    PrintError("fsck", result.error());
    if (args.json) {
      // Still one parseable object, so that scripts need not special-case it.
      FsckReport empty;
      nlohmann::json j = ReportJson(args.device, empty);
      j["clean"] = false;
      j["error"] = result.error().ToString();
      j["problems"] = nlohmann::json::array({"cannot check: " + result.error().ToString()});
      std::printf("%s\n", Dump(j).c_str());
    }
    return 1;
  }
  const FsckReport& r = *result;
  if (args.json) {
    std::printf("%s\n", Dump(ReportJson(args.device, r)).c_str());
    return r.clean() ? 0 : 1;
  }
  for (const std::string& note : r.notes) std::printf("note: %s\n", note.c_str());
  for (const std::string& problem : r.problems) std::printf("problem: %s\n", problem.c_str());
  if (r.clean()) {
    std::printf("%s: clean: %" PRIu64 " inodes (%" PRIu64 " directories, %" PRIu64
                " files, %" PRIu64 " symlinks), %" PRIu64 " used blocks (%" PRIu64
                " metadata, %" PRIu64 " data), %" PRIu64 " free blocks\n",
                args.device.c_str(), r.inodes, r.directories, r.files, r.symlinks,
                r.used_blocks, r.metadata_blocks, r.data_blocks, r.free_blocks);
    return 0;
  }
  std::printf("%s: %zu problem%s found\n", args.device.c_str(), r.problems.size(),
              r.problems.size() == 1 ? "" : "s");
  return 1;
}

}  // namespace

void SetupFsck(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<FsckArgs>();
  CLI::App* sub = app.add_subcommand(
      "fsck", "check the filesystem on DEVICE (exit 0: clean, 1: problems or cannot check)");
  sub->add_flag("--json", args->json, "print the report as a JSON object");
  sub->add_flag("-n,--no-recover", args->no_recover,
                "write nothing: open DEVICE read-only, replay the journal in memory only, check that");
  sub->add_option("DEVICE", args->device, "device or image file")->required();
  sub->callback([args, exit_code] { *exit_code = RunFsck(*args); });
}

}  // namespace udax::cli
