#include "server/log.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rmt::server {
namespace {

void AppendValue(absl::string_view value, std::string* out) {
  const bool quote = value.empty() ||
                     value.find_first_of(" \"=\t\n") != absl::string_view::npos;
  if (!quote) {
    absl::StrAppend(out, value);
    return;
  }
  absl::StrAppend(out, "\"",
                  absl::StrReplaceAll(
                      value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}}),
                  "\"");
}

std::string FormatLogFields(absl::string_view event,
                            std::initializer_list<LogField> fields,
                            absl::string_view level) {
  std::string line = absl::StrCat("level=", level, " event=", event);
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&line, " ", key, "=");
    AppendValue(value, &line);
  }
  return line;
}

}  // namespace

void LogEvent(absl::string_view event, std::initializer_list<LogField> fields,
              absl::string_view level) {
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", FormatLogFields(event, fields, level), "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace rmt::server
