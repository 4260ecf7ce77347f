// Small error-propagation macros. Debian's abseil (20220623) ships no
// RETURN_IF_ERROR / ASSIGN_OR_RETURN, so the project defines them once here.
#ifndef RMT_MODEL_STATUS_MACROS_H_
#define RMT_MODEL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RMT_STATUS_CONCAT_INNER_(x, y) x##y
#define RMT_STATUS_CONCAT_(x, y) RMT_STATUS_CONCAT_INNER_(x, y)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status rmt_status_ = (expr);       \
    if (!rmt_status_.ok()) return rmt_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an OK StatusOr or
// returns its status.
#define ASSIGN_OR_RETURN(lhs, rexpr)                                           \
  RMT_ASSIGN_OR_RETURN_IMPL_(RMT_STATUS_CONCAT_(rmt_statusor_, __LINE__), lhs, \
                             rexpr)

#define RMT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // RMT_MODEL_STATUS_MACROS_H_
