#include "client/resumable_ask.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rmt::client {
namespace {

// What the conversation knows across its streams.
struct Conversation {
  std::string session_id;
  // Text bytes the session held before this document (continued sessions),
  // known once it is first opened.
  std::optional<int64_t> base_bytes;
  std::vector<std::optional<v1::Answer>> answers;
  v1::Progress progress;
  // This stream's: got `opened`; document bytes written; what a resumed
  // session held.
  bool opened = false;
  int64_t offset = 0;  // the document is sent from here
  // Called once the stream is open and knows its offset, before it sends.
  std::function<void()> on_opened;
  int64_t bytes_sent = 0;
  std::optional<v1::Progress> restored;
};

grpc::Status Protocol(const std::string& what) {
  return grpc::Status(
      grpc::StatusCode::INTERNAL,
      absl::StrCat("unexpected response from the server: ", what));
}

// A stream that may be worth opening again: the replica went away or is
// draining, or the session store was briefly down. Everything else (bad
// input, a failed or expired session, authentication) would fail again.
//
// A load balancer whose upstream dies in the middle of a stream can only
// reset it: nginx sends RST_STREAM(INTERNAL_ERROR), which gRPC reports as
// INTERNAL "Received RST_STREAM with error code 2". That is the transport's
// message, never the server's, so it is told apart by its words.
bool Retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         (status.error_code() == grpc::StatusCode::INTERNAL &&
          absl::StartsWith(status.error_message(), "Received RST_STREAM"));
}

// 16 random bytes as 32 lower-case hex digits.
std::string RandomSessionId() {
  std::random_device random;  // the OS's CSPRNG (/dev/urandom)
  std::string id;
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(
        &id, absl::Hex(static_cast<uint32_t>(random()), absl::kZeroPad8));
  }
  return id;
}

// One Converse stream: opens (or continues) the session, sends the document
// from where the session stands, then the questions not answered yet.
grpc::Status Stream(v1::MemoryQA::Stub& stub, const ChannelOptions& channel,
                    absl::string_view document,
                    const std::vector<std::string>& questions,
                    const AskOptions& options, AskObserver* observer,
                    Conversation& conversation) {
  conversation.opened = false;
  conversation.offset = 0;
  conversation.bytes_sent = 0;
  conversation.restored.reset();
  grpc::ClientContext context;
  Authorize(channel, &context);
  // A new session gets an id drawn here, so that a load balancer hashing
  // x-session-id sends this stream where every later call of it goes.
  const bool is_new = conversation.session_id.empty();
  const std::string id = is_new ? RandomSessionId() : conversation.session_id;
  context.AddMetadata("x-session-id", id);
  auto stream = stub.Converse(&context);
  v1::ConverseRequest request;
  v1::Open* open = request.mutable_open();
  if (is_new) {
    open->set_new_session_id(id);
  } else {
    open->set_session_id(id);
  }
  open->set_keep_alive(true);  // see the header: closed at the end
  open->set_top_k(options.top_k);
  v1::ConverseResponse response;
  if (!stream->Write(request) || !stream->Read(&response)) {
    return stream->Finish();
  }
  if (!response.has_opened()) {
    context.TryCancel();
    static_cast<void>(stream->Finish());  // the protocol error is the news
    return Protocol("the first response is not `opened`");
  }
  conversation.session_id = response.opened().session_id();
  conversation.opened = true;
  if (response.opened().resumed()) {
    // The session says at once how much of the document it holds.
    if (!stream->Read(&response)) return stream->Finish();
    const int64_t held =
        response.has_progress() ? response.progress().bytes_received() : -1;
    if (!conversation.base_bytes.has_value()) conversation.base_bytes = held;
    const int64_t base = *conversation.base_bytes;
    if (held < base || held - base > static_cast<int64_t>(document.size())) {
      context.TryCancel();
      static_cast<void>(stream->Finish());
      return Protocol(absl::StrCat(
          "the session reports ", held, " bytes received, outside this ",
          "document (", base, " to ", base + document.size(), ")"));
    }
    conversation.restored = response.progress();
    conversation.progress = response.progress();
    conversation.offset = held - base;
  } else {
    conversation.base_bytes = 0;
  }
  if (observer != nullptr) observer->OnOpened(conversation.session_id);
  // Before anything is sent: the resume is complete from here.
  if (conversation.on_opened) conversation.on_opened();

  // The reader owns the answers and progress until it is joined.
  std::thread reader([&] {
    v1::ConverseResponse in;
    while (stream->Read(&in)) {
      if (in.has_answer()) {
        size_t index = 0;
        if (absl::SimpleAtoi(in.answer().question_id(), &index) &&
            index < conversation.answers.size()) {
          conversation.answers[index] = in.answer();
        }
      } else if (in.has_progress()) {
        conversation.progress = in.progress();
        if (observer != nullptr) observer->OnProgress(in.progress());
      }
    }
  });
  bool ok = true;
  for (size_t at = static_cast<size_t>(conversation.offset);
       ok && at < document.size(); at += options.chunk_bytes) {
    const size_t length = std::min(options.chunk_bytes, document.size() - at);
    request.Clear();
    request.mutable_chunk()->set_text(document.data() + at, length);
    ok = stream->Write(request);
    if (ok) conversation.bytes_sent = static_cast<int64_t>(at + length);
  }
  for (size_t i = 0; ok && i < questions.size(); ++i) {
    if (conversation.answers[i].has_value()) continue;
    request.Clear();
    request.mutable_question()->set_id(std::to_string(i));
    request.mutable_question()->set_text(questions[i]);
    ok = stream->Write(request);
  }
  stream->WritesDone();
  reader.join();
  return stream->Finish();
}

}  // namespace

AskResult ResumableAsk(v1::MemoryQA::Stub& stub, const ChannelOptions& channel,
                       absl::string_view document,
                       const std::vector<std::string>& questions,
                       const AskOptions& options, AskObserver* observer) {
  AskOptions checked = options;
  checked.chunk_bytes = std::max<size_t>(1, options.chunk_bytes);
  Conversation conversation;
  conversation.session_id = options.session_id;
  conversation.answers.resize(questions.size());
  AskResult result;
  // The break being recovered from, and the tries since it.
  std::optional<ResumeEvent> resuming;
  int tries = 0;
  absl::Duration backoff = checked.first_backoff;
  // A stream that opens after a break completes the resume.
  conversation.on_opened = [&] {
    if (!resuming.has_value()) return;
    resuming->resumed_at = absl::Now();
    resuming->started_over = !conversation.restored.has_value();
    resuming->resent_from = conversation.offset;
    if (conversation.restored.has_value()) {
      resuming->restored = *conversation.restored;
    }
    if (observer != nullptr) observer->OnResumed(*resuming);
    result.resumes.push_back(*std::move(resuming));
    resuming.reset();
    tries = 0;
    backoff = checked.first_backoff;
  };
  while (true) {
    grpc::Status status = Stream(stub, channel, document, questions, checked,
                                 observer, conversation);
    if (status.ok()) break;
    if (resuming.has_value() && !conversation.session_id.empty() &&
        options.session_id.empty() &&
        status.error_code() == grpc::StatusCode::NOT_FOUND) {
      // Lost before its first checkpoint: a new session, from the start
      // (a continued session cannot start over: what it held is gone).
      conversation.session_id.clear();
      continue;
    }
    if (!Retryable(status) || tries >= checked.max_resumes) {
      result.status = status;
      break;
    }
    ++tries;
    if (!resuming.has_value()) {
      ResumeEvent event;
      event.broken = status;
      event.broken_at = absl::Now();
      event.bytes_sent = conversation.bytes_sent;
      event.tokens_reported = conversation.progress.tokens_received();
      event.segments_reported = conversation.progress.segments_processed();
      resuming = event;
    }
    if (observer != nullptr) observer->OnBroken(status, backoff);
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, checked.max_backoff);
  }
  result.session_id = conversation.session_id;
  result.progress = conversation.progress;
  for (std::optional<v1::Answer>& answer : conversation.answers) {
    if (answer.has_value()) result.answers.push_back(*std::move(answer));
  }
  if (result.status.ok() && result.answers.size() != questions.size()) {
    result.status =
        Protocol(absl::StrCat("answers to ", result.answers.size(), " of ",
                              questions.size(), " questions"));
  }
  if (!checked.keep_session && !conversation.session_id.empty()) {
    grpc::ClientContext context;
    Authorize(channel, &context);
    context.AddMetadata("x-session-id", conversation.session_id);
    v1::CloseSessionRequest close;
    close.set_session_id(conversation.session_id);
    v1::CloseSessionResponse closed;
    result.close_status = stub.CloseSession(&context, close, &closed);
  }
  return result;
}

}  // namespace rmt::client
