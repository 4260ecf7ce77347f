// Structured logs: one line per event on stderr, as key=value pairs.
//
//   LogEvent("session_opened", {{"session", id}, {"owner", owner}});
//   -> ts=2026-11-23T10:00:00.123Z level=info event=session_opened session=3f..
//
// Values with spaces, quotes or '=' are quoted. Thread-safe: each line is
// written with one call, so lines of different threads never interleave.
#ifndef RMT_SERVER_LOG_H_
#define RMT_SERVER_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace rmt::server {

using LogField = std::pair<absl::string_view, std::string>;

void LogEvent(absl::string_view event, std::initializer_list<LogField> fields,
              absl::string_view level = "info");

}  // namespace rmt::server

#endif  // RMT_SERVER_LOG_H_
