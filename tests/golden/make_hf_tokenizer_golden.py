"""Writes the tokenizer parity fixture: tests/golden/hf_tokenizer/.

Runs the real Hugging Face tokenizers (pinned by scripts/hf_venv.sh), the
slow Python BertTokenizer and the fast Rust BertTokenizerFast, on

  - the whole of Debian's fortunes (/usr/share/games/fortunes, every file,
    every entry between "%" lines: about 15,000 texts), and
  - EDGE_CASES below: accents, CJK, combining marks, emoji, control
    characters, odd spaces, long words, literal special tokens,

with two vocabularies, uncased (do_lower_case, accents stripped) and cased,
each built here from the same texts (build_vocab: every character they
contain, so the edge cases are not all [UNK], and their frequent words and
endings). Deterministic: a rerun rewrites identical bytes. What it writes,
kept small:

  <vocab>/vocab.txt, tokenizer_config.json, special_tokens_map.json
                    BertTokenizer.save_pretrained
  cases.json        every edge case: its text and both tokenizers' ids for
                    both vocabularies (no [CLS]/[SEP])
  corpus.json       the corpus in order (files sorted, entries in file
                    order) cut into blocks of BLOCK entries; per vocabulary
                    and tokenizer one FNV-1a-32 hash per block of the ids
                    (each id as 4 little-endian bytes, 0xFFFFFFFF after each
                    entry); per file its entry count and FNV-1a-64 of its
                    bytes (so a changed corpus is told apart from a changed
                    tokenizer); and the full ids of every SAMPLE-th entry.

tokenizer_test's HfTokenizerParity tests compare ours with both, and list
every difference found in their header.

Run: $(bash scripts/hf_venv.sh) tests/golden/make_hf_tokenizer_golden.py
"""

import argparse
import collections
import json
import os
import shutil
import tempfile

from transformers import BertTokenizer, BertTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
FORTUNES = "/usr/share/games/fortunes"
BLOCK = 16
SAMPLE = 199
VOCAB_WORDS = 3000
VOCAB_SUFFIXES = 500
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# name -> text. Names are what the C++ test's list of differences refers to.
EDGE_CASES = {
    # Accents: precomposed, decomposed, compatibility signs NFC changes.
    "accents_precomposed": "Café naïve Ångström résumé jalapeño façade",
    "accents_decomposed": "Cafe\u0301 nai\u0308ve A\u030angstro\u0308m",
    "accents_upper": "CAFÉ NAÏVE ÉCOLE ÜBER STRAßE",
    "nfc_signs": "\u212bngstrom \u212aelvin \u2126hm",
    "marks_out_of_order": "\u1ea1\u0302 a\u0302\u0323 a\u0323\u0302",
    "combining_alone": "\u0301 \u0301abc x\u0301\u0301\u0301",
    "many_marks": "z" + "\u0301" * 40 + "a",
    "hebrew_niqqud": "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",
    "devanagari": "\u0928\u092e\u0938\u094d\u0924\u0947 \u0939\u093f\u0928\u094d\u0926\u0940",
    "arabic": "\u0645\u064e\u0631\u0652\u062d\u064e\u0628\u064b\u0627",
    "vietnamese": "Tiếng Việt có dấu",
    # CJK: ideographs, extension B, compatibility, kana, hangul, fullwidth.
    "cjk_mixed": "我爱你 中文text mixed中文and English日本語",
    "cjk_punctuation": "你好，世界。「引用」",
    "cjk_ext_b_compat": "a\uf900b \U00020000x\u9fff",
    "kana": "ひらがな カタカナ ｶﾀｶﾅ",
    "hangul": "한국어 \u1112\u1161\u11ab",
    "fullwidth": "ＡＢＣ ａｂｃ １２３ ！？",
    # Emoji: plain, skin tone, ZWJ family, flag, keycap, newer than
    # Unicode 14 (U+1FAE8, Unicode 15).
    "emoji": "emoji \U0001f600 ok \U0001f44d\U0001f3fd",
    "emoji_zwj": "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",
    "emoji_flag_keycap": "\U0001f1eb\U0001f1f7 1\ufe0f\u20e3",
    "emoji_unicode15": "new \U0001fae8 face",
    # Control and format characters, odd spaces, line separators.
    "c0_controls": "a\x00b\x07c\x08d\x1be\x7ff",
    "c1_controls": "a\x80b\x85c\x99d\x9fe",
    "crlf_tabs": "line1\r\nline2\tcol\r\n\n\x0bx\x0cy\x1cz",
    "line_separators": "hello\u2028world\u2029again",
    "format_chars": "zero\u200bwidth\u200djoin\ufeffbom soft\u00adhyphen",
    "replacement_char": "bad\ufffdchar \ufffd",
    "private_unassigned": "pri\ue000vate un\u0378assigned",
    "spaces": "\u00a0nbsp\u3000ideographic\u2003em\u2009thin\u202fnarrow",
    # Case mappings that are not one code point to one.
    "final_sigma": "ΟΔΟΣ ΟΔΟΣ. Σ",
    "dotted_capital_i": "İstanbul DİYARBAKIR",
    "capital_sharp_s": "\u1e9e STRASSE",
    "titlecase_digraph": "\u01c5emal \u01c4",
    "ligatures": "\ufb01nance \ufb00",
    "roman_circled": "\u216b \u24b6\u24b7",
    "math_alnum": "\U0001d400\U0001d401 \U0001d5ba",
    # Punctuation and symbols HF treats specially.
    "ascii_punct": "Hello, World!!! (a) [b] {c} <d> \"e\" 'f' #g$ %h^ &i* ~j` _k|",
    "unicode_punct": "\u201cquoted\u201d \u00abguillemets\u00bb \u2014dash\u2026 ¿qué? ¡sí!",
    "symbols": "€100 £5 ©2024 ™ ° ± § ¶",
    "literal_special_tokens": "[CLS] hello [SEP] world [MASK] [UNK] [PAD]",
    "mojibake": "donâ\u0080\u0099t Ã©",
    # Word lengths around max_input_chars_per_word (100).
    "word_100": "a" * 100,
    "word_101": "b" * 101 + " ok",
    "word_long_accented": "e\u0301" * 60 + " e\u0301" * 3,
    "word_200": "hello" * 40,
    "empty": "",
    "whitespace_only": "   \t\n  \r\n ",
}


def read_corpus():
    """[(file name, raw bytes, [entry texts])], files sorted."""
    corpus = []
    for name in sorted(os.listdir(FORTUNES)):
        path = os.path.join(FORTUNES, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path) or \
                not os.path.isfile(path):
            continue
        data = open(path, "rb").read()
        corpus.append((name, data, split_entries(data.decode("utf-8"))))
    return corpus


def split_entries(text):
    """Entries between lines that are exactly "%"; the C++ test splits the
    same way: on "\\n", a "%" line ends an entry, a last entry without one
    counts when non-empty."""
    entries, lines = [], []
    for line in text.split("\n"):
        if line == "%":
            entries.append("\n".join(lines))
            lines = []
        else:
            lines.append(line)
    rest = "\n".join(lines)
    if rest:
        entries.append(rest)
    return entries


def fnv1a32_ids(ids, h):
    for value in list(ids) + [-1]:
        for byte in (value & 0xFFFFFFFF).to_bytes(4, "little"):
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def build_vocab(texts, lowercase):
    """A deterministic WordPiece vocabulary (tokenizers' trainer is not: two
    runs differ): the special tokens, every character the texts' words
    contain (alone and as a "##" continuation, so nothing is [UNK] for lack
    of a character), the VOCAB_WORDS most frequent words and the
    VOCAB_SUFFIXES most frequent 2-4 character word endings, ties broken by
    the text."""
    from transformers.models.bert.tokenization_bert import BasicTokenizer
    basic = BasicTokenizer(do_lower_case=lowercase, strip_accents=lowercase)
    words = collections.Counter()
    for text in texts:
        words.update(basic.tokenize(text))
    chars = sorted({ch for word in words for ch in word})
    suffixes = collections.Counter()
    for word, count in words.items():
        for k in (2, 3, 4):
            if len(word) > k:
                suffixes["##" + word[-k:]] += count
    vocab = SPECIALS + chars + ["##" + ch for ch in chars]
    seen = set(vocab)
    frequent = sorted(words.items(), key=lambda item: (-item[1], item[0]))
    for word, count in frequent[:VOCAB_WORDS]:
        if count >= 2 and word not in seen:
            vocab.append(word)
            seen.add(word)
    ranked = sorted(suffixes.items(), key=lambda item: (-item[1], item[0]))
    for suffix, _ in ranked[:VOCAB_SUFFIXES]:
        if suffix not in seen:
            vocab.append(suffix)
            seen.add(suffix)
    return vocab


def make_tokenizers(texts, lowercase, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in ("vocab.txt", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    tmp = tempfile.mkdtemp()
    vocab_path = os.path.join(tmp, "vocab.txt")
    with open(vocab_path, "w", encoding="utf-8", newline="\n") as out:
        out.write("".join(t + "\n" for t in build_vocab(texts, lowercase)))
    slow = BertTokenizer(vocab_path, do_lower_case=lowercase,
                         clean_up_tokenization_spaces=True)
    slow.save_pretrained(out_dir)
    shutil.rmtree(tmp)
    fast = BertTokenizerFast(os.path.join(out_dir, "vocab.txt"),
                             do_lower_case=lowercase,
                             clean_up_tokenization_spaces=True)
    return slow, fast


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(HERE, "hf_tokenizer"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    corpus = read_corpus()
    texts = [entry for _, _, entries in corpus for entry in entries]
    edge_texts = list(EDGE_CASES.values())
    vocabs = {}
    for name, lowercase in (("uncased", True), ("cased", False)):
        # The edge cases three times, so that their words count as
        # frequent.
        vocabs[name] = make_tokenizers(texts + edge_texts * 3, lowercase,
                                       os.path.join(args.out, name))

    cases = []
    for case_name, text in EDGE_CASES.items():
        case = {"name": case_name, "text": text}
        for vocab_name, (slow, fast) in vocabs.items():
            case[vocab_name] = {"slow": encode(slow, text),
                                "fast": encode(fast, text)}
        cases.append(case)
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8",
              newline="\n") as out:
        out.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=True)
                                       for c in cases) + "\n]\n")

    result = {
        "block_size": BLOCK,
        "sample_every": SAMPLE,
        "files": [{"name": name, "entries": len(entries),
                   "fnv1a64": f"{fnv1a64(data):016x}"}
                  for name, data, entries in corpus],
        "hashes": {},
        "samples": [],
    }
    all_ids = {}
    for vocab_name, (slow, fast) in vocabs.items():
        for kind, tokenizer in (("slow", slow), ("fast", fast)):
            ids = [encode(tokenizer, text) for text in texts]
            all_ids[(vocab_name, kind)] = ids
            blocks = []
            for start in range(0, len(ids), BLOCK):
                h = 0x811C9DC5
                for entry in ids[start:start + BLOCK]:
                    h = fnv1a32_ids(entry, h)
                blocks.append(f"{h:08x}")
            result["hashes"][f"{vocab_name}.{kind}"] = blocks
    for index in range(0, len(texts), SAMPLE):
        sample = {"entry": index}
        for (vocab_name, kind), ids in all_ids.items():
            sample[f"{vocab_name}.{kind}"] = ids[index]
        result["samples"].append(sample)
    with open(os.path.join(args.out, "corpus.json"), "w", encoding="utf-8",
              newline="\n") as out:
        out.write("{\n" + ",\n".join(
            f"{json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}"
            for key, value in result.items()) + "\n}\n")

    for vocab_name in vocabs:
        slow_ids = all_ids[(vocab_name, "slow")]
        fast_ids = all_ids[(vocab_name, "fast")]
        differ = sum(a != b for a, b in zip(slow_ids, fast_ids))
        print(f"{vocab_name}: {len(texts)} corpus entries, slow and fast "
              f"differ on {differ}")
    print(f"wrote {args.out}: {len(cases)} edge cases")


if __name__ == "__main__":
    main()
