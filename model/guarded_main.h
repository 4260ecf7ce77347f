// GuardedMain: the body of every binary's main, so that no exception escapes
// it. Torch reports failures by throwing (c10::Error, std::bad_alloc), and an
// exception leaving main aborts the process (exit 134, a core dump, a
// backtrace on stderr) instead of a message and exit 1.
//
//   int main(int argc, char** argv) {
//     return rmt::GuardedMain("rmt-cli", [&] { ...; return 0; });
//   }
//
// Only the calling thread is covered: an exception on another thread still
// ends in std::terminate, so threads convert their own (the engine's
// scheduler returns statuses).
#ifndef RMT_MODEL_GUARDED_MAIN_H_
#define RMT_MODEL_GUARDED_MAIN_H_

#include <cstdio>
#include <exception>
#include <new>
#include <string>

namespace rmt {

template <typename Body>
int GuardedMain(const char* program, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", program);
  } catch (const std::exception& error) {
    // c10::Error's what() appends a multi-line C++ backtrace; the first line
    // is the message.
    std::string message = error.what();
    message = message.substr(0, message.find('\n'));
    std::fprintf(stderr, "%s: error: %s\n", program, message.c_str());
  } catch (...) {
    std::fprintf(stderr, "%s: error: an exception of unknown type\n", program);
  }
  return 1;
}

}  // namespace rmt

#endif  // RMT_MODEL_GUARDED_MAIN_H_
