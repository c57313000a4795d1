// tools/udax/io.h — the command language of `udax io` (modelled on xfs_io):
// the state commands share (the mounted filesystem, the current file), the
// table entry describing one command, and the parsed form of its arguments.
//
// io_cmd.cc owns the driver (mount, read command lines, split them, look the
// command up, parse its options, report failures, unmount); io_commands.cc
// owns the command table and the handlers (io_mmap.cc the mapping ones). To
// add a command, write a handler and add one IoCommand row to the table in
// io_commands.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "udax/fs.h"
#include "udax/mapping.h"
#include "udax/status.h"

namespace udax::cli {

// One `mmap` of the current file (io_mmap.cc). It outlives `close` of the
// file it maps.
struct IoMapping {
  Mapping map;
  std::string name;     // the mapped file's path, as given to `open`
  uint64_t offset = 0;  // file offset of the first mapped byte
  uint64_t length = 0;  // as given to `mmap` (the mapping covers whole pages)
  Prot prot = Prot::kRead;
  bool sync = false;  // mapped with -S (udax mappings always behave as MAP_SYNC)
};

// State shared by the commands of one `udax io` run.
struct IoContext {
  Filesystem* fs = nullptr;
  File file;         // the current file (`open` sets it, `close` clears it)
  std::string path;  // its path as given to `open`
  bool writable = false;  // the current file is open for writing
  bool failed = false;  // some command has failed (exit status 1)
  bool quit = false;    // stop reading commands

  // The mappings, oldest first, as xfs_io's table; maps[current] is the
  // current one (`mmap` makes a new mapping current; `munmap` removes it).
  std::vector<IoMapping> maps;
  size_t current = 0;

  // EBADF "no file is open" unless a file is open.
  Status NeedFile() const;
  // EINVAL "no mapped regions" unless a mapping exists.
  Status NeedMapping() const;
  // Unmaps every mapping (before unmount); the first error.
  Status UnmapAll();
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

// xfs_io's dump_buffer(): 16 bytes a line, "%08llx:  xx xx ...  text"
// (io_commands.cc).
void DumpBuffer(uint64_t offset, const unsigned char* p, size_t len);

// The mapping commands (io_mmap.cc), as xfs_io's mmap/mread/mwrite/msync/munmap.
Status CmdMmap(IoContext& ctx, const IoArgs& args);
Status CmdMread(IoContext& ctx, const IoArgs& args);
Status CmdMwrite(IoContext& ctx, const IoArgs& args);
Status CmdMsync(IoContext& ctx, const IoArgs& args);
Status CmdMunmap(IoContext& ctx, const IoArgs& args);
Status CmdReflink(IoContext& ctx, const IoArgs& args);
Status CmdDedupe(IoContext& ctx, const IoArgs& args);
Status CmdBmap(IoContext& ctx, const IoArgs& args);
Status CmdRmap(IoContext& ctx, const IoArgs& args);

// Splits a command line into words: blanks separate words, '...' and "..."
// quote, backslash escapes the next character. EINVAL on an unterminated
// quote.
Status SplitCommandLine(const std::string& line, std::vector<std::string>* words);

// Parses words[1..] against cmd.options and the operand counts; EINVAL
// "usage: ..." when they do not fit.
Status ParseIoArgs(const IoCommand& cmd, const std::vector<std::string>& words, IoArgs* args);

}  // namespace udax::cli
