#include "tools/program_flags.h"

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace rmt {
namespace {

bool IsOwnFlagFile(absl::string_view filename) {
  return !absl::StrContains(filename, "absl/");
}

}  // namespace

std::vector<char*> ParseProgramFlags(int argc, char** argv,
                                     absl::string_view usage) {
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = &IsOwnFlagFile;
  config.contains_help_flags = &IsOwnFlagFile;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace rmt
