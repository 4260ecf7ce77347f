// Fuzzes ModelConfig::FromJson. Invariants for a config it accepts: it
// passes Validate, ToJson reparses to a config whose ToJson is the same text
// (a fixed point), and its checkpoint layout stays within the parameter
// limit Validate promises (so loading it cannot ask torch for more).
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/checkpoint_layout.h"
#include "model/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = rmt::ModelConfig::FromJson(text, "fuzz/config.json");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(config->Validate().ok());
  FUZZ_CHECK(config->segment_length() <= config->max_position_embeddings);
  FUZZ_CHECK(config->content_vocab_size() >= 4);

  std::string json;
  try {
    json = config->ToJson();
  } catch (const std::exception&) {
    // nlohmann's dump() throws for labels that are not UTF-8; FromJson's
    // parser accepts only UTF-8, so this must not happen.
    FUZZ_CHECK(false);
  }
  auto again = rmt::ModelConfig::FromJson(json, "fuzz/config.json (again)");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == json);

  double parameters = 0;
  for (const rmt::TensorSpec& spec : rmt::CheckpointLayout(*config)) {
    double numel = 1;
    for (int64_t dim : spec.shape) {
      FUZZ_CHECK(dim > 0);
      numel *= static_cast<double>(dim);
    }
    parameters += numel;
  }
  FUZZ_CHECK(parameters <= 20e9);
  return 0;
}
