#include "train/label_extension.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "model/model_directory.h"

namespace rmt {

absl::StatusOr<RmtModel> AppendLabels(const RmtModel& model,
                                      const std::vector<std::string>& labels,
                                      uint64_t seed) {
  if (labels.empty()) {
    return absl::InvalidArgumentError("no label to append");
  }
  ModelConfig config = model->config();
  std::set<std::string> seen(config.labels.begin(), config.labels.end());
  for (const std::string& label : labels) {
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", label, "\" is the model's or repeated"));
    }
    config.labels.push_back(label);
  }
  // A whole new model gives the new rows the initialisation a new model's
  // classifier has; everything else is then overwritten.
  RmtModel grown =
      CreateRandomModel(config, model->special_tokens(), seed, RandomInit{});
  const int64_t old_rows = model->config().num_labels();
  {
    torch::NoGradGuard no_grad;
    const auto old_parameters = model->named_parameters();
    for (auto& item : grown->named_parameters()) {
      const torch::Tensor& old = old_parameters[item.key()];
      torch::Tensor& param = item.value();
      if (param.sizes() == old.sizes()) {
        param.copy_(old);
      } else {  // the classifier: (labels, d) weight, (labels) bias
        param.slice(0, 0, old_rows).copy_(old);
      }
    }
    const auto old_buffers = model->named_buffers();
    for (auto& item : grown->named_buffers()) {
      item.value().copy_(old_buffers[item.key()]);
    }
  }
  grown->to(model->classifier->weight.device());
  grown->train(model->is_training());
  return grown;
}

}  // namespace rmt
