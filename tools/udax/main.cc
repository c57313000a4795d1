// tools/udax/main.cc — entry point of the `udax` tool: the top-level CLI11
// parser, --help/--version, and dispatch to the subcommands (each defined in
// its own *_cmd.cc file and listed in kSubcommands below).
//
// Usage errors exit with kUsageExitCode (2); --help and --version exit 0; a
// subcommand's own exit status is returned otherwise. No exception escapes:
// anything unexpected is reported and the exit status is 1.
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.h"

namespace udax::cli {
void SetupDemo(CLI::App& app, int* exit_code);  // demo_cmd.cc
}  // namespace udax::cli

namespace {

// Adding a subcommand (e.g. `bench`, `demo`): write its Setup function in its
// own file, declare it in cli.h and list it here.
constexpr udax::cli::SetupFn kSubcommands[] = {
    udax::cli::SetupMkfs,
    udax::cli::SetupFsck,
    udax::cli::SetupInfo,
    udax::cli::SetupIo,
    udax::cli::SetupBench,
    udax::cli::SetupMount,
    udax::cli::SetupUmount,
    udax::cli::SetupRemove,
    udax::cli::SetupPoison,
    udax::cli::SetupStatus,
    udax::cli::SetupDemo,
};

int Main(int argc, char** argv) {
  CLI::App app{"udax: a user-space filesystem for persistent memory", "udax"};
  app.set_version_flag("--version", std::string("udax ") + udax::cli::kVersion);
  app.require_subcommand(1);
  app.fallthrough(false);

  int exit_code = 0;
  for (udax::cli::SetupFn setup : kSubcommands) setup(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return udax::cli::kUsageExitCode;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Writing to a closed pipe (`udax io img -c "cat f" | head -c1`) must end in
  // an EPIPE error, not in death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return Main(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "udax: out of memory (ENOMEM)\n");
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "udax: internal error: %s (EIO)\n", e.what());
  }
  return 1;
}
