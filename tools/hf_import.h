// Turns a Hugging Face BERT checkpoint directory into an RMT model directory.
//
// The source is what save_pretrained writes for BertModel or any BERT head
// model (BertForSequenceClassification, BertForMaskedLM, ...): config.json,
// vocab.txt, model.safetensors, optionally tokenizer_config.json. Tensor
// names may carry the "bert." prefix or not; heads other than the encoder
// and pooler are dropped.
//
// What the RMT model gets, as the reference RMT builds it from a pretrained
// BERT: the encoder's weights; num_mem_tokens more word-embedding rows (the
// reference grows the vocabulary with resize_token_embeddings, which
// initialises new rows from normal(0, initializer_range)); an "rmt" config;
// and a fresh classifier (normal(0, initializer_range), zero bias) for the
// given labels. Optionally only the first N layers, a vocabulary pruned to
// the pieces a corpus uses (ids renumbered in the original order), and
// position embeddings cut to one segment's length.
//
//   ImportOptions options;
//   options.labels = {"office", "kitchen"};
//   ASSIGN_OR_RETURN(ImportReport report,
//                    ImportHfCheckpoint("all-MiniLM-L6-v2", "out", options));
//
// Thread-safety: a pure function of its arguments and the files.
#ifndef RMT_TOOLS_HF_IMPORT_H_
#define RMT_TOOLS_HF_IMPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace rmt {

struct ImportOptions {
  std::vector<std::string> labels;  // required, unique
  int64_t num_mem_tokens = 10;
  // Content tokens per segment; 0: as many as the positions allow.
  int64_t segment_size = 0;
  MemoryAttention memory_attention = MemoryAttention::kFull;
  MemoryDType memory_dtype = MemoryDType::kFloat32;
  // Keep only the first N encoder layers; 0 keeps them all.
  int64_t keep_layers = 0;
  // UTF-8 text files: when any are given, the vocabulary keeps only the
  // special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]) and the pieces these
  // texts tokenize to, so the texts tokenize to the same pieces as before.
  std::vector<std::string> prune_corpus;
  // Cut the position embeddings to one segment's length (they are unused
  // past it).
  bool truncate_positions = false;
  DType dtype = DType::kF32;  // F32, F16 or BF16
  uint64_t seed = 1;          // memory rows and classifier
};

struct ImportReport {
  int64_t source_vocab = 0;
  int64_t kept_vocab = 0;  // vocab.txt lines written
  int64_t source_layers = 0;
  ModelConfig config;  // as written
  int64_t parameters = 0;
  int64_t weight_bytes = 0;  // model.safetensors's tensor bytes
};

// Writes config.json, vocab.txt, tokenizer_config.json and model.safetensors
// into `out` (created if needed). INVALID_ARGUMENT for a checkpoint or
// options that do not fit (naming the file or option), NOT_FOUND for a
// missing file.
absl::StatusOr<ImportReport> ImportHfCheckpoint(const std::string& from,
                                                const std::string& out,
                                                const ImportOptions& options);

}  // namespace rmt

#endif  // RMT_TOOLS_HF_IMPORT_H_
