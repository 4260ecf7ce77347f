// Segmenter: cuts a stream of token ids into RMT segments.
//
// Ids arrive in pieces of any size; every segment_size ids make a full
// segment, and Flush() hands out the partial tail (when the document ends,
// or before a question, which must see everything sent so far).
//
//   Segmenter segmenter(499);
//   for (auto& segment : segmenter.Append(ids)) engine->SubmitSegment(...);
//   if (auto tail = segmenter.Flush()) engine->SubmitSegment(..., *tail);
//
// Thread-safety: none; one per stream.
#ifndef RMT_MODEL_SEGMENTER_H_
#define RMT_MODEL_SEGMENTER_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace rmt {

class Segmenter {
 public:
  explicit Segmenter(int64_t segment_size) : segment_size_(segment_size) {
    pending_.reserve(segment_size);
  }

  // Returns the segments completed by `ids`, in order.
  std::vector<std::vector<int32_t>> Append(const std::vector<int32_t>& ids) {
    std::vector<std::vector<int32_t>> full;
    for (int32_t id : ids) {
      pending_.push_back(id);
      if (static_cast<int64_t>(pending_.size()) == segment_size_) {
        full.push_back(std::move(pending_));
        pending_.clear();
        pending_.reserve(segment_size_);
      }
    }
    return full;
  }

  // The partial segment, if any ids are pending.
  std::optional<std::vector<int32_t>> Flush() {
    if (pending_.empty()) return std::nullopt;
    std::vector<int32_t> tail = std::move(pending_);
    pending_.clear();
    pending_.reserve(segment_size_);
    return tail;
  }

  // Ids received but not yet in a segment (for snapshots).
  const std::vector<int32_t>& pending() const { return pending_; }
  void Restore(std::vector<int32_t> pending) { pending_ = std::move(pending); }
  int64_t segment_size() const { return segment_size_; }

 private:
  int64_t segment_size_;
  std::vector<int32_t> pending_;
};

}  // namespace rmt

#endif  // RMT_MODEL_SEGMENTER_H_
