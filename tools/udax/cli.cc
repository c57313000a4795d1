// tools/udax/cli.cc — the helpers declared in cli.h that every subcommand
// shares: number parsing and error reporting.
#include "cli.h"

#include <cerrno>
#include <cstdio>

#include "units.h"

namespace udax::cli {

Status ParseNumber(const std::string& text, const char* what, uint64_t* value) {
  std::optional<uint64_t> v = ParseSize(text);
  if (!v.has_value()) {
    return Status::Error(EINVAL, std::string("invalid ") + what + " '" + text + "'");
  }
  *value = *v;
  return Status::Ok();
}

void PrintError(const std::string& ctx, const Status& status) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s\n", ctx.c_str(), status.ToString().c_str());
  std::fflush(stderr);
}

}  // namespace udax::cli
