// tests/fuzz/replay_main.cc — the regression replayer: runs every input file
// named on the command line (a directory: every file in it, sorted) through
// the fuzz target's LLVMFuzzerTestOneInput, as libFuzzer would, without
// libFuzzer. The ctest fuzz_replay runs it over tests/fuzz/corpus/ and
// tests/fuzz/regressions/, so every input the fuzzer ever found stays fixed.
// A crash or sanitizer report fails the test; exit status 2 when a path
// cannot be read.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::filesystem::path> InputsOf(const std::filesystem::path& p) {
  if (!std::filesystem::is_directory(p)) return {p};
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(p))
    if (e.is_regular_file() && e.path().filename().string().rfind("README", 0) != 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 0;
  for (int i = 1; i < argc; i++) {
    if (!std::filesystem::exists(argv[i])) {
      std::fprintf(stderr, "fuzz_replay: %s does not exist\n", argv[i]);
      return 2;
    }
    for (const auto& path : InputsOf(argv[i])) {
      std::ifstream f(path, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "fuzz_replay: cannot read %s\n", path.c_str());
        return 2;
      }
      std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::printf("replay %s (%zu bytes)\n", path.c_str(), data.size());
      std::fflush(stdout);  // the last name printed is the input that crashed
      LLVMFuzzerTestOneInput(data.data(), data.size());
      n++;
    }
  }
  std::printf("fuzz_replay: %zu inputs, no crash\n", n);
  return 0;
}
