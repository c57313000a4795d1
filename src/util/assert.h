// util/assert.h — contracts checked in debug builds (SQLite's assert habit).
//
// UDAX_ASSERT(cond) and UDAX_ASSERT_MSG(cond, msg) state what the code itself
// guarantees: when UDAX_ASSERTS is defined (the CMake option of that name: ON
// in Debug and sanitizer builds, OFF in Release) a false condition prints
//   udax: assertion failed: src/btree/btree.cc:123: keys_ascending: <msg>
// to stderr and aborts; otherwise neither the condition nor the message is
// evaluated (Release speed is unchanged). UDAX_DEBUG_ONLY(x) keeps x only in
// builds with assertions (debug-only members, bookkeeping for the checks).
//
// An assertion is never the answer to bad input: whatever the media, a caller
// or a peer can hand in gets a Status (EUCLEAN for corruption, naming the
// block and the field). An assertion fires only on a state that no input can
// produce — a bug in udax, or a test that breaks a contract on purpose
// (tests/contracts_test.cc).
#pragma once

#include <string>

namespace udax {
// Prints the failure (file:line, condition, message) and aborts.
[[noreturn]] void AssertFail(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace udax

#ifdef UDAX_ASSERTS
#define UDAX_ASSERTS_ON 1
#define UDAX_ASSERT_MSG(cond, msg)                                      \
  do {                                                                  \
    if (__builtin_expect(!(cond), 0))                                   \
      ::udax::AssertFail(__FILE__, __LINE__, #cond, std::string(msg)); \
  } while (0)
#define UDAX_DEBUG_ONLY(...) __VA_ARGS__
#else
#define UDAX_ASSERTS_ON 0
// Nothing is compiled: a condition may name UDAX_DEBUG_ONLY members.
#define UDAX_ASSERT_MSG(cond, msg) \
  do {                             \
  } while (0)
#define UDAX_DEBUG_ONLY(...)
#endif

#define UDAX_ASSERT(cond) UDAX_ASSERT_MSG(cond, "")
