// The encoder of an RmtModel run as plain BERT, for comparisons with Hugging
// Face: the caller's ids as they are (no memory written, no segment layout),
// positions 0..T-1, token type 0, an attention mask over padding only.
#ifndef RMT_TESTS_PLAIN_BERT_H_
#define RMT_TESTS_PLAIN_BERT_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/bert.h"
#include "model/rmt_model.h"
#include "model/safetensors.h"
#include "model/torch_interop.h"

namespace rmt::testing {

struct PlainBertOutput {
  // [0]: the embeddings' output, [i]: layer i's output, each (B, T, d);
  // Hugging Face's output_hidden_states.
  std::vector<torch::Tensor> hidden_states;
  torch::Tensor logits;  // (B, num_labels)
};

// input_ids, attention_mask: (B, T) integers, the mask 1 at real positions.
inline PlainBertOutput RunPlainBert(RmtModelImpl& model,
                                    const torch::Tensor& input_ids,
                                    const torch::Tensor& attention_mask) {
  torch::NoGradGuard no_grad;
  BertModelImpl& bert = *model.bert;
  const int64_t batch = input_ids.size(0);
  const int64_t length = input_ids.size(1);
  const torch::ScalarType dtype =
      bert.embeddings->word_embeddings->weight.scalar_type();
  torch::Tensor mask =
      torch::zeros({batch, 1, 1, length}, torch::dtype(dtype))
          .masked_fill_(attention_mask.eq(0).view({batch, 1, 1, length}),
                        MaskedScore(dtype));  // (B, 1, 1, T)
  PlainBertOutput out;
  torch::Tensor x = bert.embeddings(
      bert.embeddings->word_embeddings(input_ids.to(torch::kLong)));
  out.hidden_states.push_back(x);
  for (const auto& layer : *bert.encoder->layer) {
    x = layer->as<BertLayerImpl>()->forward(x, mask);
    out.hidden_states.push_back(x);
  }
  out.logits = model.classifier(bert.pooler(x));
  return out;
}

// A tensor of a safetensors fixture, as stored; a test failure (and an
// undefined tensor) when it is missing or unreadable.
inline torch::Tensor FixtureTensor(const SafetensorsFile& file,
                                   const std::string& name) {
  auto view = file.Get(name);
  EXPECT_TRUE(view.ok()) << view.status();
  if (!view.ok()) return {};
  auto tensor = TensorFromView(*view);
  EXPECT_TRUE(tensor.ok()) << tensor.status();
  return tensor.ok() ? *tensor : torch::Tensor();
}

// max |a - b| over all entries, in double.
inline double MaxAbsError(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

}  // namespace rmt::testing

#endif  // RMT_TESTS_PLAIN_BERT_H_
