// tools/udax/cli.h — declarations shared by the files of the `udax` tool:
// the subcommand setup functions that main.cc dispatches to, and small
// helpers for parsing numbers and reporting errors the same way everywhere.
//
// A subcommand lives in its own file (mkfs_cmd.cc, fsck_cmd.cc, ...) and
// exposes one Setup function: it adds a CLI11 subcommand to `app` whose
// callback runs the command and stores the process exit status in *exit_code.
#pragma once

#include <cstdint>
#include <string>

#include "udax/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace udax::cli {

inline constexpr const char* kVersion = "0.1.0";

// Exit status for command-line syntax errors (unknown option, missing DEVICE).
inline constexpr int kUsageExitCode = 2;

using SetupFn = void (*)(CLI::App& app, int* exit_code);

void SetupMkfs(CLI::App& app, int* exit_code);  // mkfs_cmd.cc
void SetupFsck(CLI::App& app, int* exit_code);  // fsck_cmd.cc
void SetupInfo(CLI::App& app, int* exit_code);  // info_cmd.cc
void SetupIo(CLI::App& app, int* exit_code);    // io_cmd.cc
void SetupBench(CLI::App& app, int* exit_code); // bench/bench_main.cc
void SetupMount(CLI::App& app, int* exit_code);  // mount_cmd.cc
void SetupUmount(CLI::App& app, int* exit_code); // mount_cmd.cc
void SetupRemove(CLI::App& app, int* exit_code); // mount_ctl_cmd.cc
void SetupPoison(CLI::App& app, int* exit_code); // mount_ctl_cmd.cc
void SetupStatus(CLI::App& app, int* exit_code); // status_cmd.cc

// Parses a CLI number: decimal or 0x hex with an optional k/m/g/t suffix.
// On failure returns EINVAL "invalid WHAT 'TEXT'".
Status ParseNumber(const std::string& text, const char* what, uint64_t* value);

// Prints "CTX: message (ERRNO)" on stderr, after flushing stdout so that the
// two streams stay in order when they go to the same place.
void PrintError(const std::string& ctx, const Status& status);

}  // namespace udax::cli
