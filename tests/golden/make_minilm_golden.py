"""Writes tests/golden/minilm/expected.safetensors: what Hugging Face's
BertModel computes with the real all-MiniLM-L6-v2 weights for a few texts.

The weights are not committed: scripts/fetch_minilm.sh puts them in a build
folder, and minilm_parity_test (which imports them with rmt-import's code
and compares our encoder with these numbers within 1e-4) skips without them.

  input_ids, attention_mask   I64 [B, T]  BertTokenizer(texts, padding=True)
  hidden_states.i             F32 [B, T, 32]  every 12th channel of layer
                                              i's output (0: embeddings; 6 is
                                              the last hidden state), to keep
                                              the fixture small
  __metadata__                {"texts": JSON list}

Run: bash scripts/fetch_minilm.sh build/minilm
     $(bash scripts/hf_venv.sh) tests/golden/make_minilm_golden.py \\
         --weights build/minilm/model
"""

import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
TEXTS = [
    "Mary travelled to the office. The cat sat on the mat.",
    "Where is Mary?",
    "Recurrent memory transformers read documents far longer than their "
    "context window, café naïve 東京!",
]
CHANNEL_STRIDE = 12


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="build/minilm/model")
    parser.add_argument("--out", default=os.path.join(HERE, "minilm"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = BertTokenizer.from_pretrained(args.weights)
    model = BertModel.from_pretrained(args.weights).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    output_hidden_states=True)
    tensors = {
        "input_ids": batch["input_ids"].to(torch.int64).contiguous(),
        "attention_mask": batch["attention_mask"].to(torch.int64).contiguous(),
    }
    for i, hidden in enumerate(out.hidden_states):
        tensors[f"hidden_states.{i}"] = \
            hidden[:, :, ::CHANNEL_STRIDE].contiguous()
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "expected.safetensors"),
              metadata={"texts": json.dumps(TEXTS)})
    print(f"wrote {args.out}: {len(TEXTS)} texts, "
          f"{tuple(batch['input_ids'].shape)} ids, "
          f"{len(out.hidden_states)} hidden states")


if __name__ == "__main__":
    main()
