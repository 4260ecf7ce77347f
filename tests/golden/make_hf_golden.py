"""Writes the Hugging Face parity fixture: tests/golden/hf/.

Unlike make_model_golden.py (an independent float64 reference), this one runs
the real library: a random, tiny BertForSequenceClassification saved with
save_pretrained (safetensors) next to its BertTokenizerFast, and what the
model computes for a few texts. The C++ loader must read hf/model/ exactly
as written here, and hf_parity_test compares its encoder with these numbers.

  hf/model/            save_pretrained output, untouched: config.json,
                       model.safetensors, vocab.txt, tokenizer_config.json,
                       special_tokens_map.json, tokenizer.json
  hf/expected.safetensors
      input_ids        I64 [B, T]  BertTokenizerFast(texts, padding=True)
      attention_mask   I64 [B, T]
      hidden_states.i  F32 [B, T, d] for i in 0..layers (0: embeddings)
      logits           F32 [B, num_labels]
      __metadata__     {"texts": JSON list} (one key: safetensors orders
                       metadata keys by hash, so two would not be stable)

Every parameter is random (biases and LayerNorm too, so that each one
matters), dropout is off (eval), and the inputs are padded to the longest,
so the padding mask is checked as well. Deterministic for a given
transformers/torch pair.

Run: $(bash scripts/hf_venv.sh) tests/golden/make_hf_golden.py [--out DIR]
"""

import argparse
import json
import os

import torch
from safetensors.torch import save_file
from transformers import (BertConfig, BertForSequenceClassification,
                          BertTokenizerFast)

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20260112

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "cat", "sat", "on", "mat", "hello", "world", "mary", "went",
    "to", "office", "kitchen", "where", "is", "john", "garden", "memory",
    "recurrent", "transformer", "token", "##izer", "##ing", "##ed",
    "un", "##aff", "##able", "an", "of", "and", "in", "it", "was",
]
TEXTS = [
    "Hello, world!",
    "Mary went to the office. Where is Mary?",
    "the cat sat on the mat",
    "Unaffable tokenizers, recurrent memory transformer; where is John? "
    "In the garden (and the kitchen).",
]
LABELS = ["office", "kitchen", "garden"]


def build_vocab():
    vocab = SPECIALS + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    vocab += list("abcdefghijklmnopqrstuvwxyz")
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += WORDS
    assert len(vocab) == len(set(vocab))
    return vocab


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(HERE, "hf"))
    args = parser.parse_args()
    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # the same reduction order on every machine
    vocab = build_vocab()
    vocab_path = os.path.join(args.out, "vocab.tmp")
    with open(vocab_path, "w", encoding="utf-8") as out:
        out.write("".join(token + "\n" for token in vocab))
    tokenizer = BertTokenizerFast(vocab_file=vocab_path, do_lower_case=True,
                                  clean_up_tokenization_spaces=True)
    os.remove(vocab_path)

    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, hidden_act="gelu",
        max_position_embeddings=64, type_vocab_size=2,
        initializer_range=0.2, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm.weight" in name:
                param.copy_(1 + 0.2 * torch.randn_like(param))
            elif name.endswith(".bias"):
                param.copy_(0.2 * torch.randn_like(param))
    model.eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    tokenizer.save_pretrained(model_dir)

    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    output_hidden_states=True)
    tensors = {
        "input_ids": batch["input_ids"].to(torch.int64).contiguous(),
        "attention_mask": batch["attention_mask"].to(torch.int64).contiguous(),
        "logits": out.logits.contiguous(),
    }
    for i, hidden in enumerate(out.hidden_states):
        tensors[f"hidden_states.{i}"] = hidden.contiguous()
    save_file(tensors, os.path.join(args.out, "expected.safetensors"),
              metadata={"texts": json.dumps(TEXTS)})
    print(f"wrote {model_dir} ({len(vocab)} tokens) and "
          f"{len(out.hidden_states)} hidden states for {len(TEXTS)} texts")


if __name__ == "__main__":
    main()
