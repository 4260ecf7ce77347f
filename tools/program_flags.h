// Command-line setup shared by every rmt binary: the usage message, a
// --help that lists the binary's own flags, and parsing.
//
//   int main(int argc, char** argv) {
//     std::vector<char*> args = rmt::ParseProgramFlags(
//         argc, argv, "Serves the rmt.v1.MemoryQA gRPC API.");
//
// abseil's --help only lists flags defined in a file named after the
// binary (rmt-server.cc); ours live in main.cc and friends, so by default
// --help printed "No flags matched". Here it lists every flag defined
// outside abseil itself.
#ifndef RMT_TOOLS_PROGRAM_FLAGS_H_
#define RMT_TOOLS_PROGRAM_FLAGS_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace rmt {

// Parses argv (exits on --help or a malformed flag); returns the
// positional arguments, argv[0] first.
std::vector<char*> ParseProgramFlags(int argc, char** argv,
                                     absl::string_view usage);

}  // namespace rmt

#endif  // RMT_TOOLS_PROGRAM_FLAGS_H_
