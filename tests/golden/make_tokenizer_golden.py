#!/usr/bin/python3
"""Writes the tokenizer golden fixture: tokenizer/vocab.txt and cases.json.

An independent reference for model/tokenizer.cc, written from the algorithm of
Hugging Face's (slow, Python) BertTokenizer rather than by importing it:

  BasicTokenizer
    1. clean: drop U+0000, U+FFFD and control characters (any "C*" category
       except \\t \\n \\r); map whitespace (" ", \\t, \\n, \\r, Zs) to " ".
    2. put spaces around CJK ideographs (tokenize_chinese_chars).
    3. NFC-normalise the whole text (added in transformers PR #22280, 2023;
       BertTokenizerFast and older releases skip it, which only matters for
       decomposed text whose accents are kept).
    4. split with str.split() (which also splits on U+2028 / U+2029).
    5. per word: lower() if do_lower_case; if strip_accents (None follows
       do_lower_case) NFD and drop category Mn; split off every punctuation
       character (ASCII 33-47, 58-64, 91-96, 123-126, or any "P*" category).
  WordpieceTokenizer
    6. a word longer than 100 code points is [UNK]; otherwise greedy
       longest-match-first with "##" continuations, [UNK] if any position
       has no match.

Each case is {"text", "do_lower_case", ["strip_accents",] "tokens", "ids"};
strip_accents is present only where it differs from do_lower_case's default.
Texts use only characters whose properties agree between Unicode 14 (this
Python) and 15 (utf8proc), and avoid Python lower() special cases (U+0130,
final sigma) that a per-code-point lower-case cannot reproduce; the script
checks both. The output is deterministic.

Run: /usr/bin/python3 tests/golden/make_tokenizer_golden.py
"""

import json
import os
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "tokenizer")
MAX_INPUT_CHARS_PER_WORD = 100

# ---------------------------------------------------------------------------
# Reference algorithm.

CJK_RANGES = [
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
]


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch):
    return any(lo <= ord(ch) <= hi for lo, hi in CJK_RANGES)


def split_on_punctuation(word):
    pieces, current = [], ""
    for ch in word:
        if is_punctuation(ch):
            if current:
                pieces.append(current)
                current = ""
            pieces.append(ch)
        else:
            current += ch
    if current:
        pieces.append(current)
    return pieces


def basic_tokenize(text, do_lower_case, strip_accents):
    cleaned = []
    for ch in text:
        if ord(ch) in (0, 0xFFFD) or is_control(ch):
            continue
        cleaned.append(" " if is_whitespace(ch) else ch)
    spaced = "".join(f" {ch} " if is_cjk(ch) else ch for ch in cleaned)
    words = []
    for word in unicodedata.normalize("NFC", spaced).split():
        if do_lower_case:
            word = word.lower()
        if strip_accents:
            word = "".join(ch for ch in unicodedata.normalize("NFD", word)
                           if unicodedata.category(ch) != "Mn")
        words.extend(split_on_punctuation(word))
    return " ".join(words).split()


def wordpiece(word, vocab):
    if len(word) > MAX_INPUT_CHARS_PER_WORD:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = ("##" if start > 0 else "") + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def tokenize(text, vocab, do_lower_case, strip_accents):
    tokens = []
    for word in basic_tokenize(text, do_lower_case, strip_accents):
        tokens.extend(wordpiece(word, vocab))
    return tokens


# ---------------------------------------------------------------------------
# Vocabulary: ~300 entries, order fixed.

def build_vocab():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    vocab += ["\uff0c", "\u3002", "\u3001", "\u00bf", "\u00a1", "\u2026",
              "\u2014", "\u00ab", "\u00bb", "\u201c", "\u201d"]
    vocab += [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab += list(letters)
    # No "##q", "##x", "##z": words with them inside have no split.
    vocab += [f"##{c}" for c in letters if c not in "qxz"]
    vocab += list(letters.upper())
    vocab += [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
        "hello", "world", "token", "##izer", "##ization", "##ed",
        "##ing", "##er", "##ly", "un", "##aff", "##able", "play", "##ful",
        "memory", "transformer", "recurrent", "serve", "text", "mixed", "and",
        "english", "line", "col", "again", "zero", "width", "join",
        "bom", "soft", "hyphen", "bad", "char", "emoji", "ok", "nbsp",
        "ideographic", "em", "space", "don", "won", "it", "pm", "tab",
        "cafe", "naive", "angstrom", "ang", "##strom", "resume", "que", "si",
        "The", "Hello", "World", "BERT", "English", "Cafe",
        # Accented forms: NFC output of cased / lower-cased-unstripped text.
        "caf\u00e9", "Caf\u00e9", "na\u00efve", "\u00c5ngstr\u00f6m",
        "\u00e5ngstr\u00f6m", "r\u00e9sum\u00e9", "qu\u00e9", "s\u00ed",
        "\u00e9", "##\u00e9", "\u00ef", "##\u00ef", "\u00e5", "##\u00e5",
        "\u00f6", "##\u00f6", "\u00fc", "##\u00fc", "\u00f1", "##\u00f1",
        "\u00c5", "##\u0301", "\u1ead",
        # CJK (U+8C48 is the NFC of the compatibility ideograph U+F900).
        "\u4e2d", "\u6587", "\u65e5", "\u672c", "\u8a9e", "\u6211", "\u7231",
        "\u4f60", "\u597d", "\u4e16", "\u754c", "\u8c48",
        # Hangul: syllables for cased text, jamo for NFD-stripped text.
        "\ud55c", "##\uad6d", "##\uc5b4", "\u1112", "##\u1100",
        "##\u110b", "##\u1161", "##\u11ab", "##\u116e", "##\u11a8",
        "##\u1165",
        # Bengali KO (U+0995 U+09CB); NFD splits the vowel sign in two.
        "\u0995\u09cb", "\u0995", "##\u09c7", "##\u09be",
        # Greek.
        "\u03bf", "##\u03bc", "##\u03b7", "##\u03c1", "##\u03bf", "##\u03c2",
        "\u1f45", "\u1f4d",
        # Title-case digraph and its lower case.
        "\u01c5", "\u01c6", "##emal",
    ]
    assert len(vocab) == len(set(vocab)), "duplicate vocabulary entries"
    return vocab


# ---------------------------------------------------------------------------
# Cases.

LONG_WORD = "hello" * 30  # 150 code points.

TEXTS = [
    # Plain English and ## splits.
    "The quick brown fox jumps over the lazy dog.",
    "unaffable playing tokenization tokenizers played playful",
    "recurrent memory transformer serve",
    # Punctuation runs, mixed case.
    "Hello, World!!! ...?! (a) [b] {c} <d> \"e\" 'f' #g$ %h^ &i* ~j` _k|",
    "HeLLo WoRLD hello world BERT bert",
    "don't won't it's U.S.A. e.g. 2024-01-15 12:30pm $100.50",
    "\u201cquoted\u201d \u00abguillemets\u00bb \u2014dash\u2026 "
    "\u00bfqu\u00e9? \u00a1s\u00ed!",
    # Accents: precomposed, decomposed, Angstrom sign.
    "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m r\u00e9sum\u00e9",
    "Caf\u00e9 NA\u00cfVE \u00e5ngstr\u00f6m",
    "cafe\u0301 nai\u0308ve \u212bngstro\u0308m",
    # CJK mixed with Latin, compatibility and extension B ideographs.
    "\u6211\u7231\u4f60 \u4e2d\u6587 text mixed\u4e2d\u6587and "
    "English\u65e5\u672c\u8a9e",
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002\u3001",
    "a\uf900b \U00020000x\u9fff",
    # Control characters, CRLF, tabs, line and paragraph separators.
    "a\x00b\x07c\x1bd\x7fe\x85f",
    "line1\r\nline2\tcol\r\n\n",
    "a\tb\r\nc\rd\ne\x0bf\x0cg\x1ch",
    "hello\u2028world\u2029again",
    # Zero-width (Cf), replacement character, private use, unassigned.
    "zero\u200bwidth\u200djoin\ufeffbom soft\u00adhyphen",
    "bad\ufffdchar \ufffd \ufffdok",
    "pri\ue000vate un\u0378assigned",
    # Other spaces.
    "\u00a0nbsp\u3000ideographic\u2003em\u2009space",
    # Emoji (unknown), with skin tone and ZWJ sequences.
    "emoji \U0001f600 and \U0001f44d\U0001f3fd ok "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    # Word lengths: 150 (too long), 100 (fits), 101 (too long).
    LONG_WORD,
    "a" * 100,
    "b" * 101 + " ok",
    # No possible split.
    "qqq xqz aqa q x",
    # Empty, whitespace only.
    "",
    "   \t\n  \r\n ",
    # Combining marks: on their own, composing with punctuation, many.
    " \u0301abc \u0301",
    "x=\u0338y a<\u0338b \u2260 \u226e",
    # Marks out of canonical order: NFC sorts them before composing.
    "\u1ea1\u0302 a\u0302\u0323 a\u0323\u0302 \u00e2\u0323",
    "z" + "\u0301" * 30 + "a",
    "e" + "\u0301\u0300" * 250 + " ok",
    # Scripts whose NFC composes starters: Hangul, Bengali; Greek.
    "\ud55c\uad6d\uc5b4 \u1112\u1161\u11ab\u1100\u116e\u11a8",
    "\u0995\u09c7\u09be \u0995\u09cb",
    "\u1f4d\u03bc\u03b7\u03c1\u03bf\u03c2 \u1f45",
    # Title-case digraph, ligature (compatibility only, so kept).
    "\u01c5emal \ufb01nance",
]

# Only these unassigned code points may appear (unassigned in 14 and 15).
ALLOWED_UNASSIGNED = {"\u0378"}


def check_text(text):
    for ch in text:
        if unicodedata.category(ch) == "Cn":
            assert ch in ALLOWED_UNASSIGNED, f"unassigned U+{ord(ch):04X}"
        assert len(ch.lower()) == 1, f"U+{ord(ch):04X} lowers to 2"
        assert ch != "\u03a3", "capital sigma lowers by context"


def main():
    vocab = build_vocab()
    ids = {token: i for i, token in enumerate(vocab)}
    # Guard the reference against itself.
    assert tokenize("unaffable", ids, True, True) == ["un", "##aff", "##able"]
    assert tokenize("Caf\u00e9!", ids, True, True) == ["cafe", "!"]
    assert tokenize("Caf\u00e9!", ids, False, False) == ["Caf\u00e9", "!"]
    assert tokenize("aqa", ids, True, True) == ["[UNK]"]

    cases = []
    # Defaults (strip_accents follows do_lower_case) first, then the two
    # explicit combinations.
    for explicit in (False, True):
        for text in TEXTS:
            check_text(text)
            for do_lower_case in (True, False):
                strip = do_lower_case != explicit
                tokens = tokenize(text, ids, do_lower_case, strip)
                case = {"text": text, "do_lower_case": do_lower_case}
                if explicit:
                    case["strip_accents"] = strip
                case["tokens"] = tokens
                case["ids"] = [ids[t] for t in tokens]
                cases.append(case)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "vocab.txt"), "w", encoding="utf-8",
              newline="\n") as out:
        out.write("".join(token + "\n" for token in vocab))
    with open(os.path.join(OUT_DIR, "cases.json"), "w", encoding="utf-8",
              newline="\n") as out:
        # One case per line keeps diffs readable.
        out.write("[\n" + ",\n".join(json.dumps(case, ensure_ascii=True)
                                       for case in cases) + "\n]\n")
    print(f"wrote {len(vocab)} tokens and {len(cases)} cases to {OUT_DIR}")


if __name__ == "__main__":
    main()
