// tools/udax/io.h — the command language of `udax io` (modelled on xfs_io):
// the state commands share (the mounted filesystem, the current file), the
// table entry describing one command, and the parsed form of its arguments.
//
// io_cmd.cc owns the driver (mount, read command lines, split them, look the
// command up, parse its options, report failures, unmount); io_commands.cc
// owns the command table and the handlers. To add a command, write a handler
// and add one IoCommand row to the table in io_commands.cc.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "udax/fs.h"
#include "udax/status.h"

namespace udax::cli {

// State shared by the commands of one `udax io` run.
struct IoContext {
  Filesystem* fs = nullptr;
  File file;         // the current file (`open` sets it, `close` clears it)
  std::string path;  // its path as given to `open`
  bool failed = false;  // some command has failed (exit status 1)
  bool quit = false;    // stop reading commands

  // EBADF "no file is open" unless a file is open.
  Status NeedFile() const;
};

// The arguments of one command after option parsing.
struct IoArgs {
  std::string command;
  std::map<char, std::string> options;  // -x → value ("" for plain flags)
  std::vector<std::string> operands;

  bool Has(char opt) const { return options.count(opt) != 0; }
  const std::string& Get(char opt) const { return options.at(opt); }
};

using IoHandler = Status (*)(IoContext& ctx, const IoArgs& args);

struct IoCommand {
  const char* name;
  // getopt-style option letters; a letter followed by ':' takes a value.
  const char* options;
  int min_operands;
  int max_operands;  // -1: unlimited
  const char* usage;  // "pwrite [-S seed] [-b bsize] off len"
  const char* help;
  IoHandler handler;
};

// The command table (io_commands.cc).
std::span<const IoCommand> IoCommands();

// Splits a command line into words: blanks separate words, '...' and "..."
// quote, backslash escapes the next character. EINVAL on an unterminated
// quote.
Status SplitCommandLine(const std::string& line, std::vector<std::string>* words);

// Parses words[1..] against cmd.options and the operand counts; EINVAL
// "usage: ..." when they do not fit.
Status ParseIoArgs(const IoCommand& cmd, const std::vector<std::string>& words, IoArgs* args);

}  // namespace udax::cli
