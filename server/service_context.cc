#include "server/service_context.h"

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer.h"

namespace rmt::server {

absl::StatusOr<std::string> SessionIdOf(const grpc::CallbackServerContext& call,
                                        const std::string& in_message) {
  const auto& metadata = call.client_metadata();
  auto it = metadata.find("x-session-id");
  if (it == metadata.end()) {
    if (in_message.empty()) {
      return absl::InvalidArgumentError(
          "no session id: set session_id or the x-session-id metadata");
    }
    return in_message;
  }
  std::string from_metadata(it->second.data(), it->second.size());
  if (!in_message.empty() && in_message != from_metadata) {
    return absl::InvalidArgumentError(
        "session_id and the x-session-id metadata name different sessions");
  }
  return from_metadata;
}

absl::Status CheckChunk(const v1::Chunk& chunk, const ServiceLimits& limits) {
  switch (chunk.content_case()) {
    case v1::Chunk::kText:
      if (static_cast<int64_t>(chunk.text().size()) > limits.max_chunk_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a chunk of ", chunk.text().size(), " bytes is over the limit of ",
            limits.max_chunk_bytes, " bytes; send the text in smaller chunks"));
      }
      return absl::OkStatus();
    case v1::Chunk::kTokenIds:
      if (chunk.token_ids().ids_size() > limits.max_chunk_tokens) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a chunk of ", chunk.token_ids().ids_size(),
            " token ids is over the limit of ", limits.max_chunk_tokens,
            "; send the ids in smaller chunks"));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          "an empty chunk: set `text` or `token_ids`");
  }
}

absl::StatusOr<int> FeedChunk(Session& session, const v1::Chunk& chunk) {
  if (chunk.content_case() == v1::Chunk::kText) {
    return session.FeedText(chunk.text());
  }
  std::vector<int32_t> ids(chunk.token_ids().ids().begin(),
                           chunk.token_ids().ids().end());
  return session.FeedTokens(ids);
}

absl::Status CheckUtf8(absl::string_view bytes, absl::string_view field) {
  if (IsValidUtf8(bytes)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is not valid UTF-8; send UTF-8 text"));
}

absl::StatusOr<int> TopKOf(const v1::Question& question, int default_top_k,
                           const ServiceLimits& limits) {
  if (question.top_k() < 0 || question.top_k() > limits.max_top_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k is ", question.top_k(), "; it must be in [0, ",
                     limits.max_top_k, "] (0: the server's default)"));
  }
  if (static_cast<int64_t>(question.id().size()) >
      limits.max_question_id_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the question id has ", question.id().size(),
                     " bytes; at most ", limits.max_question_id_bytes));
  }
  RETURN_IF_ERROR(CheckUtf8(question.id(), "the question id"));
  return question.top_k() > 0 ? question.top_k() : default_top_k;
}

absl::StatusOr<std::vector<int32_t>> QuestionIds(const Session& session,
                                                 const v1::Question& question) {
  switch (question.content_case()) {
    case v1::Question::kText:
      RETURN_IF_ERROR(CheckUtf8(question.text(), "the question text"));
      return session.EncodeQuestion(question.text());
    case v1::Question::kTokenIds: {
      std::vector<int32_t> ids(question.token_ids().ids().begin(),
                               question.token_ids().ids().end());
      RETURN_IF_ERROR(session.ValidateQuestion(ids));
      return ids;
    }
    default:
      return absl::InvalidArgumentError(
          "an empty question: set `text` or `token_ids`");
  }
}

void FillProgress(const SessionProgress& progress, v1::Progress* out) {
  out->set_tokens_received(progress.tokens_received);
  out->set_segments_processed(progress.segments_processed);
  out->set_segments_pending(progress.segments_pending);
  out->set_tokens_buffered(progress.tokens_buffered);
  out->set_bytes_received(progress.bytes_received);
}

void FillAnswer(const std::string& question_id, const Answer& answer,
                int64_t segments_seen, v1::Answer* out) {
  out->set_question_id(question_id);
  if (!answer.top_k.empty()) {
    out->set_label(answer.top_k[0].label);
    out->set_score(answer.top_k[0].score);
  }
  for (const ScoredLabel& scored : answer.top_k) {
    v1::ScoredLabel* label = out->add_top_k();
    label->set_label(scored.label);
    label->set_score(scored.score);
  }
  out->set_segments_seen(segments_seen);
}

absl::StatusOr<std::shared_ptr<Session>> CreateSession(
    const ServiceContext& context, const std::string& owner,
    const std::string& snapshot, const std::string& id) {
  SessionState state;
  if (!snapshot.empty()) {
    // Verify before taking a slot: a bad snapshot costs nothing.
    ASSIGN_OR_RETURN(state, DecodeSnapshot(snapshot, *context.snapshot_key));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Session> session,
                   id.empty() ? context.sessions->Create(owner)
                              : context.sessions->CreateWithId(id, owner));
  if (!snapshot.empty()) {
    absl::Status restored = session->Restore(state);
    if (!restored.ok()) {
      context.sessions->Close(session->id(), owner, SessionOutcome::kFailed)
          .IgnoreError();
      return restored;
    }
  }
  return session;
}

}  // namespace rmt::server
