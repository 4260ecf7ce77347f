#!/usr/bin/python3
"""The RMT segment step in plain PyTorch eager: the baseline rmt-bench races.

Loads an rmt-serve model directory (config.json + model.safetensors +
vocab.txt, the format of model/model_directory.cc) and runs the same step as
RmtModel::Step in C++: a segment [CLS] [MEM]*m [SEP] tokens [SEP] [PAD]...
enters a post-LayerNorm BERT encoder with the memory written over the [MEM]
embeddings, and the outputs at the memory positions are the next memory.

Written as a PyTorch user who cares about speed would write it, never slowed
down to flatter the C++: torch.inference_mode, one fused QKV projection
(weights concatenated at load), F.scaled_dot_product_attention where the
torch version has it (else one baddbmm that adds the mask and scales), no
attention mask where no position is masked, masks built once per shape,
position and token-type embeddings summed once at load. By default every
layer computes every position, as a BERT is written; --prune_last_layer
computes only the rows the step reads ([CLS] and the memory) in the last
layer past its key/value projection, the work the C++ step does.

Run it with the same LibTorch as the C++ build (Debian's python3-torch for
the Debian build: /usr/bin/python3, not a virtual environment's python):

  /usr/bin/python3 bench/eager_reference.py --model models/rmt-babi \\
      --batches 1,16,64 --threads 2
  /usr/bin/python3 bench/eager_reference.py \\
      --check tests/golden/full/expected.safetensors \\
      --model tests/golden/full/model
  /usr/bin/python3 bench/eager_reference.py --worker --threads 2   # for
      bench/bench_compare.py: one command per line on stdin, see Worker.

--check takes the golden format (tests/golden/README.md): tokens.{s}.{b},
memory.{s}, question.{b}, logits; rmt-bench --worker writes the same format
from the C++ model.
"""

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import random
import struct
import sys
import threading
import time

import torch
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")  # torch >= 2.0
# float32 against float32 (or the float64 goldens): the same math in another
# order differs by a few units in the last place.
CHECK_TOLERANCE = 1e-5


def keep_tensor_buffers_mapped():
    """The allocator settings of rmt::KeepTensorBuffersMapped() (glibc
    mallopt), so that both sides of the race run on the same allocator."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return (libc.mallopt(m_mmap_threshold, 32 << 20) == 1 and
            libc.mallopt(m_trim_threshold, 1 << 30) == 1 and
            libc.mallopt(m_top_pad, 64 << 20) == 1)


# ---------------------------------------------------------------- safetensors

_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32,
}


def read_safetensors(path):
    """{name: tensor} of a safetensors file (8-byte header length, JSON
    header, data), without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        blob = bytearray(data[base + begin:base + end])
        flat = (torch.frombuffer(blob, dtype=dtype) if blob else
                torch.empty(0, dtype=dtype))
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors


# ---------------------------------------------------------------------- model

_MEMORY_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                  "float16": torch.float16}


class EagerRmt:
    """The RMT step for inference. All weights are plain tensors."""

    def __init__(self, directory, dtype=torch.float32,
                 prune_last_layer=False):
        with open(os.path.join(directory, "config.json")) as f:
            c = json.load(f)
        rmt = c.get("rmt", {})
        self.d = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = self.d // self.heads
        self.eps = c.get("layer_norm_eps", 1e-12)
        self.m = rmt.get("num_mem_tokens", 0)
        self.segment_size = rmt.get("segment_size",
                                    c["max_position_embeddings"] - 3)
        self.bottleneck = rmt.get("memory_attention", "full") == "bottleneck"
        self.memory_dtype = _MEMORY_DTYPES[rmt.get("memory_dtype", "float32")]
        self.vocab_size = c["vocab_size"]
        act = c["hidden_act"]
        if act == "gelu":
            self.act = F.gelu
        elif act in ("gelu_new", "gelu_pytorch_tanh"):
            self.act = lambda x: F.gelu(x, approximate="tanh")
        elif act == "relu":
            self.act = F.relu
        else:
            raise ValueError("unknown hidden_act %r" % act)
        with open(os.path.join(directory, "vocab.txt"),
                  encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.cls, self.sep, self.pad = (vocab["[CLS]"], vocab["[SEP]"],
                                        vocab["[PAD]"])
        self.content_vocab_size = self.vocab_size - self.m

        w = {k: v.to(dtype) for k, v in read_safetensors(
            os.path.join(directory, "model.safetensors")).items()}
        e = "bert.embeddings."
        self.word = w[e + "word_embeddings.weight"]
        # Every segment restarts at position 0, token type 0: one table.
        self.pos_type = (w[e + "position_embeddings.weight"] +
                         w[e + "token_type_embeddings.weight"][0])
        self.emb_ln = (w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
        self.layers = []
        for i in range(c["num_hidden_layers"]):
            p = "bert.encoder.layer.%d." % i
            s = p + "attention.self."
            self.layers.append({
                "qkv_w": torch.cat([w[s + n + ".weight"]
                                    for n in ("query", "key", "value")]),
                "qkv_b": torch.cat([w[s + n + ".bias"]
                                    for n in ("query", "key", "value")]),
                "o_w": w[p + "attention.output.dense.weight"],
                "o_b": w[p + "attention.output.dense.bias"],
                "ln1": (w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"]),
                "i_w": w[p + "intermediate.dense.weight"],
                "i_b": w[p + "intermediate.dense.bias"],
                "f_w": w[p + "output.dense.weight"],
                "f_b": w[p + "output.dense.bias"],
                "ln2": (w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"]),
            })
        self.pool_w = w["bert.pooler.dense.weight"]
        self.pool_b = w["bert.pooler.dense.bias"]
        self.cls_w = w["classifier.weight"]
        self.cls_b = w["classifier.bias"]
        self.dtype = dtype
        self.prune_last_layer = prune_last_layer
        self.min_score = torch.finfo(dtype).min
        self._masks = {}  # (T, B or None) -> additive mask

    def init_memory(self, batch):
        rows = self.word[self.vocab_size - self.m:].to(self.memory_dtype)
        return rows.unsqueeze(0).expand(batch, -1, -1).clone()

    def make_batch(self, segments):
        """ids (B, T) int64, lengths: real positions per row."""
        mem_ids = list(range(self.vocab_size - self.m, self.vocab_size))
        length = max(len(s) for s in segments) + self.m + 3
        rows, lengths = [], []
        for s in segments:
            row = [self.cls] + mem_ids + [self.sep] + list(s) + [self.sep]
            lengths.append(len(row))
            rows.append(row + [self.pad] * (length - len(row)))
        return torch.tensor(rows, dtype=torch.int64), lengths

    def _mask(self, length, lengths):
        """Additive mask broadcastable to (B, heads, T, T), or None when
        every query may attend to every key."""
        padded = any(n < length for n in lengths)
        if not padded and not self.bottleneck:
            return None
        key = (length, tuple(lengths) if padded else None)
        mask = self._masks.get(key)
        if mask is None:
            allowed = torch.ones(len(lengths), 1, length, length,
                                 dtype=torch.bool)
            if padded:
                keys = torch.arange(length) < torch.tensor(lengths)[:, None]
                allowed &= keys[:, None, None, :]
            if self.bottleneck:
                # Memory queries see every key, the others only memory keys.
                is_mem = torch.zeros(length, dtype=torch.bool)
                is_mem[1:1 + self.m] = True
                allowed &= is_mem[:, None] | is_mem[None, :]
            if not padded:
                allowed = allowed[:1]  # the same for every row
            mask = torch.zeros(allowed.shape, dtype=self.dtype)
            mask.masked_fill_(~allowed, self.min_score)
            if len(self._masks) > 64:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def _attention(self, x, layer, mask, rows):
        """Self-attention of the first `rows` positions: (B, rows, d)."""
        b, t, d = x.shape
        if rows == t:
            qkv = F.linear(x, layer["qkv_w"], layer["qkv_b"])
            q, k, v = qkv.view(b, t, 3, self.heads, self.head_dim).permute(
                2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, head_dim)
        else:  # keys and values of every position, fewer queries
            q = F.linear(x[:, :rows], layer["qkv_w"][:d],
                         layer["qkv_b"][:d]).view(
                             b, rows, self.heads, self.head_dim).transpose(1, 2)
            kv = F.linear(x, layer["qkv_w"][d:], layer["qkv_b"][d:])
            k, v = kv.view(b, t, 2, self.heads, self.head_dim).permute(
                2, 0, 3, 1, 4).unbind(0)
            if mask is not None:
                mask = mask[:, :, :rows]
        if HAS_SDPA:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            scale = 1.0 / math.sqrt(self.head_dim)
            q = q.reshape(b * self.heads, rows, self.head_dim)
            k = k.reshape(b * self.heads, t, self.head_dim)
            v = v.reshape(b * self.heads, t, self.head_dim)
            if mask is None:
                scores = torch.bmm(q, k.transpose(1, 2)).mul_(scale)
            else:
                bias = mask.expand(b, self.heads, rows, t)
                bias = (bias.reshape(b * self.heads, rows, t)
                        if mask.size(0) > 1 else
                        bias[0, 0].expand(b * self.heads, rows, t))
                scores = torch.baddbmm(bias, q, k.transpose(1, 2),
                                       alpha=scale)
            ctx = torch.bmm(scores.softmax(-1), v).view(
                b, self.heads, rows, self.head_dim)
        return ctx.transpose(1, 2).reshape(b, rows, d)

    def step(self, memory, ids, lengths, with_logits=False):
        """memory (B, m, d) -> next memory (B, m, d) [, logits]."""
        b, t = ids.shape
        x = F.embedding(ids, self.word)  # (B, T, d)
        x[:, 1:1 + self.m] = memory
        x = F.layer_norm(x + self.pos_type[:t], (self.d,), *self.emb_ln,
                         self.eps)
        mask = self._mask(t, lengths)
        for i, layer in enumerate(self.layers):
            # Only [CLS] and the memory are read from the last layer.
            last = i + 1 == len(self.layers) and self.prune_last_layer
            rows = 1 + self.m if last else t
            a = F.layer_norm(
                x[:, :rows] + F.linear(self._attention(x, layer, mask, rows),
                                       layer["o_w"], layer["o_b"]),
                (self.d,), *layer["ln1"], self.eps)
            h = self.act(F.linear(a, layer["i_w"], layer["i_b"]))
            x = F.layer_norm(a + F.linear(h, layer["f_w"], layer["f_b"]),
                             (self.d,), *layer["ln2"], self.eps)
        new_memory = x[:, 1:1 + self.m].to(self.memory_dtype)
        if not with_logits:
            return new_memory
        pooled = torch.tanh(F.linear(x[:, 0], self.pool_w, self.pool_b))
        return new_memory, F.linear(pooled, self.cls_w, self.cls_b)


# ---------------------------------------------------------------- measuring


def full_segments(model, batch, seed):
    rng = random.Random(seed)
    return [[rng.randrange(5, model.content_vocab_size)
             for _ in range(model.segment_size)] for _ in range(batch)]


def tokens_per_second(model, batch, seconds):
    """Content tokens/s of the step at `batch` full segments, timed as
    rmt-bench times the C++ step: on a fresh thread with this thread's
    torch thread count (as the engine's scheduler thread runs), the batch
    laid out every step, the memory copied out, 0.5 s of warm-up first.

    The thread matters on a loaded machine: libgomp's workers of the main
    thread spin (its default wait policy) and starve; measured with 2
    threads at a load average of 8 on 2 cores, the same steps ran 10x
    slower on the main thread than on a fresh one."""
    threads = torch.get_num_threads()
    result = []

    def run():
        torch.set_num_threads(threads)
        result.append(_tokens_per_second(model, batch, seconds))

    runner = threading.Thread(target=run)
    runner.start()
    runner.join()
    return result[0]


def _tokens_per_second(model, batch, seconds):
    segments = full_segments(model, batch, batch)
    with torch.inference_mode():
        memory = model.init_memory(batch)
        warm_until = time.perf_counter() + 0.5
        while time.perf_counter() < warm_until:
            memory = model.step(memory, *model.make_batch(segments)).clone()
        steps = 0
        start = time.perf_counter()
        while True:
            memory = model.step(memory, *model.make_batch(segments)).clone()
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return batch * model.segment_size * steps / elapsed


def check(model, path):
    """Max relative error (max |a - b| / max |b|) of this model's memories
    and logits against a golden-format file."""
    expected = read_safetensors(path)
    steps = 0
    while "memory.%d" % steps in expected:
        steps += 1
    batch = expected["memory.0"].size(0)
    worst = 0.0

    def rel(a, b):
        a, b = a.double(), b.double()
        return float((a - b).abs().max() / b.abs().max())

    with torch.inference_mode():
        memory = model.init_memory(batch)
        for s in range(steps):
            segments = [expected["tokens.%d.%d" % (s, b)].tolist()
                        for b in range(batch)]
            memory = model.step(memory, *model.make_batch(segments))
            worst = max(worst, rel(memory, expected["memory.%d" % s]))
        if "logits" in expected:
            questions = [expected["question.%d" % b].tolist()
                         for b in range(batch)]
            _, logits = model.step(memory, *model.make_batch(questions),
                                   with_logits=True)
            worst = max(worst, rel(logits, expected["logits"]))
    return worst


class Worker:
    """Answers one command per stdin line with one stdout line:
      check MODEL_DIR FILE [pruned]          -> "checked MAX_REL_ERROR"
      step MODEL_DIR BATCH SECONDS [pruned]  -> "tokens_per_s VALUE"
    "pruned": the last layer computes only the rows the step reads, as the
    C++ InferenceEncoder does. Models stay loaded between commands."""

    def __init__(self):
        self.models = {}

    def model(self, directory, pruned):
        key = (directory, pruned)
        if key not in self.models:
            self.models[key] = EagerRmt(directory, prune_last_layer=pruned)
        return self.models[key]

    def run(self):
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            pruned = words[-1] == "pruned"
            if pruned:
                words.pop()
            try:
                if words[0] == "check" and len(words) == 3:
                    reply = "checked %.3g" % check(
                        self.model(words[1], pruned), words[2])
                elif words[0] == "step" and len(words) == 4:
                    reply = "tokens_per_s %.1f" % tokens_per_second(
                        self.model(words[1], pruned), int(words[2]),
                        float(words[3]))
                else:
                    reply = "error unknown command %r" % line.strip()
            except Exception as e:  # reported to the driver, which stops
                reply = "error %s: %s" % (type(e).__name__, e)
            print(reply, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/rmt-babi")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: one per core)")
    parser.add_argument("--check", help="golden-format file to compare with")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--prune_last_layer", action="store_true",
                        help="compute only the rows the step reads in the "
                        "last layer, as the C++ InferenceEncoder does")
    parser.add_argument("--tune_malloc", type=int, default=1)
    args = parser.parse_args()
    if args.tune_malloc:
        keep_tensor_buffers_mapped()
    torch.set_num_threads(args.threads or os.cpu_count())
    if args.worker:
        Worker().run()
        return
    model = EagerRmt(args.model, prune_last_layer=args.prune_last_layer)
    print("torch %s, threads %d, sdpa %s" %
          (torch.__version__, torch.get_num_threads(), HAS_SDPA))
    if args.check:
        error = check(model, args.check)
        print("max relative error against %s: %.3g" % (args.check, error))
        sys.exit(0 if error < CHECK_TOLERANCE else 1)
    for batch in [int(b) for b in args.batches.split(",")]:
        print("batch %d: %.0f tokens/s" %
              (batch, tokens_per_second(model, batch, args.seconds)))


if __name__ == "__main__":
    main()
