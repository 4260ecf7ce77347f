#!/usr/bin/python3
"""Writes the golden RMT model fixtures and their expected outputs.

An independent reference of the Recurrent Memory Transformer math, written
with plain float64 torch tensor ops (no torch.nn modules, no transformers),
so that a bug shared by the C++ engine and a library cannot hide. Each sample
is processed on its own and unpadded: batching, padding and masking in the
engine must reproduce these numbers, not the other way around.

Writes, for each memory attention mode in {full, bottleneck}:
  <out>/<mode>/model/{config.json, vocab.txt, model.safetensors}
  <out>/<mode>/expected.safetensors
The weights are the same for both modes. Deterministic: same seed, same bytes.

Run: /usr/bin/python3 tests/golden/make_model_golden.py [--out DIR]
"""

import argparse
import json
import math
import os
import struct

import torch

SEED = 20240611
V_CONTENT = 60  # vocab.txt lines; the memory rows come after them
NUM_MEM = 4  # rmt.num_mem_tokens
HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
MAX_POSITIONS = 64
TYPE_VOCAB = 2
LN_EPS = 1e-12
SEGMENT_SIZE = 12
LABELS = ["label_a", "label_b", "label_c", "label_d", "label_e"]
VOCAB_SIZE = V_CONTENT + NUM_MEM
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
FIRST_WORD_ID = 5

BATCH = 3
SEGMENTS = 4

WORDS = [
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that",
    "with", "as", "by", "at", "from", "his", "her", "it", "an", "are",
    "were", "which", "this", "be", "or", "has", "had", "not", "but", "first",
    "one", "their", "its", "new", "after", "who", "they", "have", "two",
    "been", "she", "he", "all", "when", "during", "into", "school", "time",
    "may", "years", "more", "most", "only", "over", "city",
]
assert len(WORDS) == V_CONTENT - FIRST_WORD_ID
assert len(set(WORDS)) == len(WORDS)


# ---------------------------------------------------------------- safetensors

_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}


def write_safetensors(path, tensors, metadata=None):
    """Writes the format by hand: u64 LE header length, JSON header, data.

    Data is laid out in sorted-name order and the header is padded with
    spaces to a multiple of 8 bytes, as the spec recommends.
    """
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dtype, np_dtype = _DTYPES[t.dtype]
        blob = t.numpy().astype(np_dtype).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# -------------------------------------------------------------------- weights


def make_weights(gen):
    """HF BertForSequenceClassification names; Linear weights are [out, in]."""

    def matrix(*shape):
        return 0.2 * torch.randn(*shape, generator=gen, dtype=torch.float64)

    def bias(n):
        return 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)

    def ln_weight(n):
        return 1.0 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)

    w = {}
    e = "bert.embeddings."
    w[e + "word_embeddings.weight"] = matrix(VOCAB_SIZE, HIDDEN)
    w[e + "position_embeddings.weight"] = matrix(MAX_POSITIONS, HIDDEN)
    w[e + "token_type_embeddings.weight"] = matrix(TYPE_VOCAB, HIDDEN)
    w[e + "LayerNorm.weight"] = ln_weight(HIDDEN)
    w[e + "LayerNorm.bias"] = bias(HIDDEN)
    for i in range(LAYERS):
        p = "bert.encoder.layer.%d." % i
        for name in ("query", "key", "value"):
            w[p + "attention.self.%s.weight" % name] = matrix(HIDDEN, HIDDEN)
            w[p + "attention.self.%s.bias" % name] = bias(HIDDEN)
        w[p + "attention.output.dense.weight"] = matrix(HIDDEN, HIDDEN)
        w[p + "attention.output.dense.bias"] = bias(HIDDEN)
        w[p + "attention.output.LayerNorm.weight"] = ln_weight(HIDDEN)
        w[p + "attention.output.LayerNorm.bias"] = bias(HIDDEN)
        w[p + "intermediate.dense.weight"] = matrix(INTERMEDIATE, HIDDEN)
        w[p + "intermediate.dense.bias"] = bias(INTERMEDIATE)
        w[p + "output.dense.weight"] = matrix(HIDDEN, INTERMEDIATE)
        w[p + "output.dense.bias"] = bias(HIDDEN)
        w[p + "output.LayerNorm.weight"] = ln_weight(HIDDEN)
        w[p + "output.LayerNorm.bias"] = bias(HIDDEN)
    w["bert.pooler.dense.weight"] = matrix(HIDDEN, HIDDEN)
    w["bert.pooler.dense.bias"] = bias(HIDDEN)
    w["classifier.weight"] = matrix(len(LABELS), HIDDEN)
    w["classifier.bias"] = bias(len(LABELS))
    # The engine reads F32, so the reference computes with exactly the F32
    # values it stores (rounded once, then widened back to float64).
    return {k: v.float().double() for k, v in w.items()}


# ----------------------------------------------------------------- reference


def linear(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def layer_norm(x, w, prefix):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased, as in BERT
    y = (x - mean) / torch.sqrt(var + LN_EPS)
    return y * w[prefix + ".weight"] + w[prefix + ".bias"]


def gelu(x):
    # BERT's "gelu": the exact erf form, not the tanh approximation.
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def attention_allowed(length, mode):
    """[L, L] bool, True where query (row) may attend to key (column)."""
    if mode == "full":
        return torch.ones(length, length, dtype=torch.bool)
    assert mode == "bottleneck"
    is_mem = torch.zeros(length, dtype=torch.bool)
    is_mem[1:1 + NUM_MEM] = True
    # Memory queries see everything; every other query sees only memory.
    allowed = is_mem.unsqueeze(0).expand(length, length).clone()
    allowed[is_mem] = True
    return allowed


def encoder_layer(x, w, i, allowed):
    p = "bert.encoder.layer.%d." % i
    length = x.shape[0]
    head_dim = HIDDEN // HEADS

    def heads(t):  # (L, d) -> (heads, L, head_dim)
        return t.view(length, HEADS, head_dim).transpose(0, 1)

    q = heads(linear(x, w, p + "attention.self.query"))
    k = heads(linear(x, w, p + "attention.self.key"))
    v = heads(linear(x, w, p + "attention.self.value"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (heads, L, L)
    # Additive mask: the most negative float64 underflows to exactly zero
    # probability after softmax, like HF BERT's extended attention mask.
    mask = torch.zeros(length, length, dtype=torch.float64)
    mask = mask.masked_fill(~allowed, torch.finfo(torch.float64).min)
    scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    ctx = (probs @ v).transpose(0, 1).reshape(length, HIDDEN)  # (L, d)
    a = layer_norm(x + linear(ctx, w, p + "attention.output.dense"), w,
                   p + "attention.output.LayerNorm")
    inter = gelu(linear(a, w, p + "intermediate.dense"))
    return layer_norm(a + linear(inter, w, p + "output.dense"), w,
                      p + "output.LayerNorm")


def run_segment(memory, tokens, w, mode):
    """Returns final hidden states (L, d) of [CLS] [MEM]*m [SEP] t [SEP]."""
    assert 1 <= len(tokens) <= SEGMENT_SIZE
    mem_ids = list(range(V_CONTENT, V_CONTENT + NUM_MEM))
    ids = torch.tensor([CLS] + mem_ids + [SEP] + list(tokens) + [SEP])
    length = ids.shape[0]
    e = "bert.embeddings."
    x = w[e + "word_embeddings.weight"][ids].clone()
    x[1:1 + NUM_MEM] = memory
    x = x + w[e + "position_embeddings.weight"][:length]
    x = x + w[e + "token_type_embeddings.weight"][0]
    h = layer_norm(x, w, e + "LayerNorm")
    allowed = attention_allowed(length, mode)
    for i in range(LAYERS):
        h = encoder_layer(h, w, i, allowed)
    return h


def next_memory(memory, tokens, w, mode):
    return run_segment(memory, tokens, w, mode)[1:1 + NUM_MEM]


def answer_logits(memory, question, w, mode):
    h = run_segment(memory, question, w, mode)
    pooled = torch.tanh(linear(h[0], w, "bert.pooler.dense"))
    return linear(pooled, w, "classifier")


# ---------------------------------------------------------------------- data


def make_inputs(gen):
    def randint(lo, hi):  # inclusive
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    lengths = [[randint(1, SEGMENT_SIZE) for _ in range(BATCH)]
               for _ in range(SEGMENTS)]
    # The edge cases the engine's padding must get right, guaranteed.
    lengths[0][1] = SEGMENT_SIZE
    lengths[2][0] = 1
    tokens = [[torch.randint(FIRST_WORD_ID, V_CONTENT, (n,), generator=gen)
               for n in row] for row in lengths]
    questions = [torch.randint(FIRST_WORD_ID, V_CONTENT,
                               (randint(1, SEGMENT_SIZE),), generator=gen)
                 for _ in range(BATCH)]
    return tokens, questions


def config_json(mode):
    labels = {str(i): name for i, name in enumerate(LABELS)}
    # The keys of rmt::ModelConfig::ToJson (model/config.cc).
    return {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": TYPE_VOCAB,
        "layer_norm_eps": LN_EPS,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "id2label": labels,
        "label2id": {name: i for i, name in enumerate(LABELS)},
        "rmt": {
            "num_mem_tokens": NUM_MEM,
            "segment_size": SEGMENT_SIZE,
            "memory_attention": mode,
        },
    }


def write_mode(out, mode, w, tokens, questions):
    model_dir = os.path.join(out, mode, "model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config_json(mode), f, indent=2)
        f.write("\n")
    with open(os.path.join(model_dir, "vocab.txt"), "w") as f:
        for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS:
            f.write(token + "\n")
    write_safetensors(os.path.join(model_dir, "model.safetensors"),
                      {k: v.float() for k, v in w.items()},
                      {"format": "pt"})

    init_memory = w["bert.embeddings.word_embeddings.weight"][-NUM_MEM:]
    expected = {"init_memory": init_memory.float()}
    memories = [init_memory.clone() for _ in range(BATCH)]
    for s in range(SEGMENTS):
        for b in range(BATCH):
            expected["tokens.%d.%d" % (s, b)] = tokens[s][b]
            memories[b] = next_memory(memories[b], tokens[s][b].tolist(), w,
                                      mode)
        expected["memory.%d" % s] = torch.stack(memories).float()
    logits = []
    for b in range(BATCH):
        expected["question.%d" % b] = questions[b]
        logits.append(answer_logits(memories[b], questions[b].tolist(), w,
                                    mode))
    expected["logits"] = torch.stack(logits).float()
    write_safetensors(
        os.path.join(out, mode, "expected.safetensors"), expected, {
            "generator": "tests/golden/make_model_golden.py",
            "seed": SEED,
            "memory_attention": mode,
            "batch": BATCH,
            "segments": SEGMENTS,
        })


def self_check(w):
    """Invariants of the reference itself, so a broken mask or memory wiring
    fails here instead of producing plausible-looking goldens."""
    gen = torch.Generator().manual_seed(1)
    length = 1 + NUM_MEM + 1 + 3 + 1
    x = torch.randn(length, HIDDEN, generator=gen, dtype=torch.float64)
    y = x.clone()
    y[NUM_MEM + 3] += 1.0  # perturb one content position
    for mode in ("full", "bottleneck"):
        allowed = attention_allowed(length, mode)
        hx = encoder_layer(x, w, 0, allowed)
        hy = encoder_layer(y, w, 0, allowed)
        # Memory queries see every position in both modes.
        assert not torch.allclose(hx[1:1 + NUM_MEM], hy[1:1 + NUM_MEM])
        # In the bottleneck, [CLS] sees only memory, whose inputs did not
        # change; with full attention it sees the perturbed token.
        cls_same = torch.equal(hx[0], hy[0])
        assert cls_same == (mode == "bottleneck"), mode
    # The memory state, not the placeholder ids' embeddings, feeds a segment.
    memory = torch.randn(NUM_MEM, HIDDEN, generator=gen, dtype=torch.float64)
    assert not torch.allclose(next_memory(memory, [7, 8], w, "full"),
                              next_memory(memory * 0.5, [7, 8], w, "full"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(
        __file__)))
    args = parser.parse_args()
    torch.set_num_threads(1)  # bitwise-stable float64 reductions
    gen = torch.Generator().manual_seed(SEED)
    w = make_weights(gen)
    tokens, questions = make_inputs(gen)
    self_check(w)
    for mode in ("full", "bottleneck"):
        write_mode(args.out, mode, w, tokens, questions)


if __name__ == "__main__":
    main()
