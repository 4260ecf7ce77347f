#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/ (committed; rerun to
regenerate). Seeds are small, valid-or-nearly-valid inputs that start each
fuzzer deep in its parser; libFuzzer mutates them from there."""
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(ROOT))


def write(target, name, data):
    directory = os.path.join(ROOT, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(SRC, path), "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)} -> file bytes."""
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


# config_fuzzer: the golden and bundled configs, BERT-base's dimensions, and
# one with a huge dimension.
golden = read("tests/golden/full/model/config.json")
write("config", "golden_full.json", golden)
write("config", "golden_bottleneck.json",
      read("tests/golden/bottleneck/model/config.json"))
write("config", "rmt_babi.json", read("models/rmt-babi/config.json"))
base = json.loads(golden)
base.update(vocab_size=30532, hidden_size=768, num_hidden_layers=12,
            num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=512)
base["rmt"].update(num_mem_tokens=10, segment_size=499)
write("config", "bert_base.json", json.dumps(base))
huge = json.loads(golden)
huge["hidden_size"] = 2 ** 40
write("config", "huge_hidden.json", json.dumps(huge))

# safetensors_fuzzer: one file of each dtype, metadata, an empty tensor.
write("safetensors", "f32.safetensors", safetensors(
    {"w": ("F32", [2, 3], struct.pack("<6f", *range(6)))}, {"format": "pt"}))
write("safetensors", "mixed.safetensors", safetensors({
    "a": ("F16", [2], b"\x00\x3c\x00\x40"),
    "b": ("BF16", [1, 2], b"\x80\x3f\x00\x40"),
    "c": ("I32", [1], struct.pack("<i", -7)),
    "d": ("I64", [0, 4], b""),
    "e": ("I64", [1], struct.pack("<q", 1 << 40))}))
write("safetensors", "empty_header.safetensors", safetensors({}))
write("safetensors", "truncated.safetensors",
      safetensors({"w": ("F32", [4], b"\x00" * 16)})[:-3])

# streaming_tokenizer_fuzzer: text (the trailing bytes choose the options
# and cut points).
write("streaming_tokenizer", "english.txt",
      "The unaffable player's playing, un-affable! Isn't it?\n")
write("streaming_tokenizer", "unicode.txt",
      "Café CAFÉ cafe\u0301 日本語 \u00e9\u0301 \t\r\n\u200b x")
write("streaming_tokenizer", "long_word.txt",
      "a" * 40 + " " + "b" * 3 + " " + "##s")
write("streaming_tokenizer", "invalid_utf8.bin", b"ok \xc3 \xe6\x97 \xff\xfe end")

# vocabulary_fuzzer: vocab.txt files.
write("vocabulary", "golden.txt", read("tests/golden/full/model/vocab.txt"))
write("vocabulary", "small.txt",
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\nworld\n,\n!\n")
write("vocabulary", "crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\né\r\n")
write("vocabulary", "duplicate.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[SEP]\n")

# snapshot_fuzzer: the last byte picks the mode (mod 3: 0 decodes the bytes
# as they are, 1 signs them as a SnapshotPayload first, 2 builds a state from
# them for an encode/decode round trip).
payload = (b"\x0a\x03abc"                    # model_fingerprint
           b"\x12\x04tiny"                   # model_name
           b"\x1a\x03F32"                    # memory_dtype
           b"\x22\x02\x01\x02"                # memory_shape [1, 2]
           b"\x2a\x08" + struct.pack("<2f", 1.0, -2.0) +  # memory
           b"\x32\x02\x05\x06"                # pending_tokens
           b"\x3a\x02\x01\x61"                # tokenizer_state
           b"\x40\x09\x48\x01\x50\x02"        # tokens, segments, questions
           b"\x5a\x03\x0a\x01\x07"            # pending_segments [[7]]
           b"\x60\x0c")                       # bytes_received
write("snapshot", "raw_empty.bin", b"\x00")
write("snapshot", "raw_magic.bin", b"RMTSNAP2" + b"\x00" * 40 + b"\x00")
write("snapshot", "signed_payload.bin", payload + b"\x01")
write("snapshot", "signed_bad_dtype.bin",
      payload.replace(b"F32", b"I64") + b"\x01")
write("snapshot", "roundtrip_small.bin",
      b"fingerprint\\name\\" + bytes(range(64)) + b"\x02")
write("snapshot", "roundtrip_large.bin", bytes(range(256)) * 2 + b"\x02")
