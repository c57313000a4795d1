// tools/udax/io_cmd.cc — `udax io TARGET [-c CMD]...`: mounts TARGET (a
// device) — or, when TARGET is a udax mount point, connects to that mount as
// a direct client (docs/shared.md) — runs the commands (the -c arguments in
// order, or one per line from stdin, each as it arrives), unmaps the
// mappings `mmap` left, closes the current file and unmounts (a client
// disconnects).
// Owns the driver of the command language: line splitting, option parsing
// and error reporting; the commands themselves are in io_commands.cc and
// io_mmap.cc.
//
// A failing command prints "CMD: message (ERRNO)" on stderr and the next one
// runs; the exit status is 1 when any command failed. A failed mount prints
// "io: <status>" and exits 1. After `remove` (the device is gone) the commands
// fail with ENODEV, and the final munmap/close/unmount succeed: the run's
// status is that of its commands.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.h"
#include "io.h"
#include "udax/fs.h"

namespace udax::cli {

Status IoContext::NeedFile() const {
  if (!file.is_open()) return Status::Error(EBADF, "no file is open");
  return Status::Ok();
}

Status SplitCommandLine(const std::string& line, std::vector<std::string>* words) {
  words->clear();
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); i++) {
    char c = line[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        word += line[++i];
      } else {
        word += c;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
      if (in_word) words->push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\') {
      if (i + 1 < line.size()) word += line[++i];
    } else {
      word += c;
    }
  }
  if (quote != 0) return Status::Error(EINVAL, "unterminated quote");
  if (in_word) words->push_back(std::move(word));
  return Status::Ok();
}

Status ParseIoArgs(const IoCommand& cmd, const std::vector<std::string>& words, IoArgs* args) {
  const Status usage = Status::Error(EINVAL, std::string("usage: ") + cmd.usage);
  const std::string spec = cmd.options;
  args->command = words.empty() ? std::string(cmd.name) : words[0];
  args->options.clear();
  args->operands.clear();
  bool options_done = false;
  for (size_t i = 1; i < words.size(); i++) {
    const std::string& w = words[i];
    if (options_done || w.size() < 2 || w[0] != '-') {
      args->operands.push_back(w);
      continue;
    }
    if (w == "--") {
      options_done = true;
      continue;
    }
    for (size_t k = 1; k < w.size(); k++) {
      char opt = w[k];
      size_t pos = spec.find(opt);
      if (opt == ':' || pos == std::string::npos) return usage;
      bool takes_value = pos + 1 < spec.size() && spec[pos + 1] == ':';
      if (!takes_value) {
        args->options[opt] = "";
        continue;
      }
      if (k + 1 < w.size()) {
        args->options[opt] = w.substr(k + 1);
      } else if (i + 1 < words.size()) {
        args->options[opt] = words[++i];
      } else {
        return usage;
      }
      break;
    }
  }
  int n = static_cast<int>(args->operands.size());
  if (n < cmd.min_operands || (cmd.max_operands >= 0 && n > cmd.max_operands)) return usage;
  return Status::Ok();
}

namespace {

struct IoRunArgs {
  std::string device;
  std::vector<std::string> commands;
  bool read_only = false;
};

const IoCommand* FindCommand(const std::string& name) {
  for (const IoCommand& cmd : IoCommands()) {
    if (name == cmd.name) return &cmd;
  }
  return nullptr;
}

// Runs one command line; failures are reported and recorded in ctx.failed.
void RunLine(IoContext& ctx, const std::string& line) {
  size_t first = line.find_first_not_of(" \t\r\n\v\f");
  if (first == std::string::npos || line[first] == '#') return;

  std::vector<std::string> words;
  Status st = SplitCommandLine(line, &words);
  std::string name;
  if (!words.empty()) {
    name = words[0];
  } else {
    size_t end = line.find_first_of(" \t\r\n\v\f", first);
    name = line.substr(first, end == std::string::npos ? std::string::npos : end - first);
  }
  if (!st.ok()) {
    PrintError(name, st);
    ctx.failed = true;
    return;
  }
  if (words.empty()) return;  // e.g. a line of just ''

  const IoCommand* cmd = FindCommand(name);
  if (cmd == nullptr) {
    PrintError(name, Status::Error(EINVAL, "unknown command"));
    ctx.failed = true;
    return;
  }
  IoArgs args;
  st = ParseIoArgs(*cmd, words, &args);
  if (st.ok()) {
    try {
      st = cmd->handler(ctx, args);
    } catch (const std::bad_alloc&) {
      st = Status::Error(ENOMEM, "out of memory");
    } catch (const std::exception& e) {
      st = Status::Error(EIO, std::string("internal error: ") + e.what());
    }
  }
  if (!st.ok()) {
    PrintError(name, st);
    ctx.failed = true;
  }
}

// A directory is a udax mount point: this process becomes a direct client
// of the mount (Filesystem::Connect). Anything else is a device to mount.
Result<std::unique_ptr<Filesystem>> OpenTarget(const IoRunArgs& args) {
  struct stat st;
  if (::stat(args.device.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    if (args.read_only)
      return Status::Error(EINVAL, "-r mounts a device read-only; " + args.device + " is a mount point");
    return Filesystem::Connect(args.device);
  }
  MountOptions mount_opts;
  mount_opts.read_only = args.read_only;
  return Filesystem::Mount(args.device, mount_opts);
}

int RunIo(const IoRunArgs& args) {
  Result<std::unique_ptr<Filesystem>> mounted = OpenTarget(args);
  if (!mounted.has_value()) {
    PrintError("io", mounted.error());
    return 1;
  }
  std::unique_ptr<Filesystem> fs = std::move(mounted).value();
  {
    // Destroyed before `fs`: the current file must not outlive its filesystem.
    IoContext ctx;
    ctx.fs = fs.get();

    if (!args.commands.empty()) {
      for (const std::string& line : args.commands) {
        RunLine(ctx, line);
        if (ctx.quit) break;
      }
    } else {
      const bool interactive = ::isatty(STDIN_FILENO) == 1;
      char* buf = nullptr;
      size_t cap = 0;
      while (!ctx.quit) {
        if (interactive) {
          std::printf("udax> ");
          std::fflush(stdout);
        }
        ssize_t n = ::getline(&buf, &cap, stdin);
        if (n < 0) break;
        RunLine(ctx, std::string(buf, static_cast<size_t>(n)));
        std::fflush(stdout);
      }
      std::free(buf);
      if (interactive) std::printf("\n");
    }

    // Mappings outlive `close`; none may outlive the mount.
    if (!ctx.maps.empty()) {
      Status st = ctx.UnmapAll();
      if (!st.ok()) {
        PrintError("munmap", st);
        ctx.failed = true;
      }
    }
    if (ctx.file.is_open()) {
      Status st = ctx.file.Close();
      if (!st.ok()) {
        PrintError("close", st);
        ctx.failed = true;
      }
    }
    Status st = fs->Unmount();
    if (!st.ok()) {
      PrintError("io", st);
      return 1;
    }
    std::fflush(stdout);
    if (std::ferror(stdout)) {
      std::fprintf(stderr, "io: error writing to stdout\n");
      return 1;
    }
    return ctx.failed ? 1 : 0;
  }
}

}  // namespace

void SetupIo(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<IoRunArgs>();
  CLI::App* sub = app.add_subcommand(
      "io", "mount DEVICE (or connect to the udax mounted at MOUNTPOINT, as a direct client) and\n"
            "run xfs_io-style commands (from -c, else one per line on stdin, each as it arrives)");
  sub->add_option("TARGET", args->device, "device or image file, or a udax mount point")->required();
  sub->add_option("-c,--command", args->commands, "a command to run (repeatable, run in order)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_flag("-r,--read-only", args->read_only, "mount read-only");
  std::string footer =
      "Commands (numbers take k/m/g suffixes and 0x hex; a failing command prints\n"
      "\"CMD: message (ERRNO)\" and the next one runs; exit status 1 if any failed):\n";
  for (const IoCommand& cmd : IoCommands()) {
    std::string line = std::string("  ") + cmd.usage;
    line.resize(std::max<size_t>(line.size() + 1, 46), ' ');
    footer += line + cmd.help + "\n";
  }
  footer +=
      "\nMappings (xfs_io's mmap/mread/mwrite/msync/munmap; DAX, no page cache):\n"
      "  mmap maps [off, off+len) of the current file: -r read-only, -w or -rw\n"
      "  read-write, default as the file is open (-S accepted: udax mappings are always\n"
      "  MAP_SYNC). The newest mapping is current; `mmap` lists them, `mmap N` selects one;\n"
      "  munmap removes the current one. Mappings outlive close and are unmapped at the end.\n"
      "  mread/mwrite/msync take FILE offsets inside the current mapping (default: all of\n"
      "  it; msync's off page-aligned). mread prints nothing unless -v (dump offsets from\n"
      "  the mapping start) or -f (from the file start); -r accesses backwards.\n"
      "  A SIGBUS (beyond EOF, device full) prints \"CMD: message (SIGBUS)\" and the next\n"
      "  command runs; mwrite through a read-only mapping fails with EACCES. When udax\n"
      "  takes a range away (truncate, punch, copy-on-write, poison, remove) each mapping\n"
      "  prints \"invalidate: ino=N offset=OFF len=LEN reason=REASON\" (REASON: Truncate,\n"
      "  CopyOnWrite, MemoryFailure, Removed), at once, before the command's own output.\n"
      "\nDevice failure:\n"
      "  poison DEVOFF LEN emulates a memory failure of device bytes [DEVOFF, +LEN) (4k\n"
      "  aligned, inside the device, else EINVAL; find a file's bytes with bmap) and prints\n"
      "  \"poisoned LEN bytes at device offset DEVOFF\": mappings of file data there are\n"
      "  invalidated (MemoryFailure), pread there fails with EIO, mread with SIGBUS, and the\n"
      "  blocks join the persistent bad-block list (`udax info` lists it). Poisoned metadata\n"
      "  shuts the filesystem down (EIO).\n"
      "  remove takes the device away and prints \"device removed\": every mapping is\n"
      "  invalidated (Removed), later commands fail with \"filesystem shut down: device\n"
      "  removed (ENODEV)\" (a second remove: \"... is already removed (ENODEV)\"), and the\n"
      "  final unmount succeeds; committed data stays on the image for the next mount.\n";
  sub->footer(footer);
  sub->callback([args, exit_code] { *exit_code = RunIo(*args); });
}

}  // namespace udax::cli
