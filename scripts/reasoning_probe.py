#!/usr/bin/env python3
"""Why the reasoning task stays at 50%: a small probe, outside the product.

The bundled model and every rmt-train attempt so far end on the same plateau
for reasoning (bAbI task 4, two-argument relations): loss ln 2, accuracy 50%,
a guess between the two rooms the facts name. This probe asks where the
plateau comes from, on the task's facts alone (no noise, word-level tokens,
the templates of train/tasks.cc), with a post-LN encoder of the bundled
model's size (3 layers, hidden 128, 4 heads, MLP 512) in PyTorch eager:

  joint   facts and question in one sequence, answered from [CLS]: no memory.
  rmt     RMT like rmt-train's: the facts segment writes m memory tokens
          (full attention), the question segment reads them, answered from
          the question segment's [CLS]. Simpler than the product's model: no
          [SEP] after the memory, no pooler, the initial memory a parameter
          of its own rather than rows of the word embeddings.
  wide    as rmt, but the question segment reads every output of the facts
          segment (its memory tokens and its token states), not m slots.
  mix     half of each batch joint, half rmt (shared weights).
  drop    wide at first; from step --ramp_start the share of each batch
          that reads only the m slots grows linearly to all of it over
          --ramp steps (validation: slots).

In wide and drop the facts segment's outputs take the memory's place in
the question segment and get its position embeddings and LayerNorm;
--context product puts them where rmt-train's reader assist does instead:
after the question, without either, the m slots in the memory's place.

The encoder starts from PyTorch's default initialisation; --init bert
starts it from rmt-train's (every weight N(0, 0.02), biases 0), --init_std
and --embed_std change those deviations; --init torch_scales keeps
rmt-train's form (normal weights, zero biases) at the deviation PyTorch
gave each weight; --init torch_zero_bias is PyTorch's with zero biases.
--facts 3 or 4 states that many
facts about the room, each with its own direction (bAbI has two).
--mlm_steps N first trains N steps of BERT's masked-language modelling on
the facts and questions (a stand-in for the pretraining the RMT paper's
BERT had), then the mode's own task.

Validation is 500 fixed samples read through the mode's own path (mix and
drop: the rmt path). The task has only 5,760 distinct samples, so training
sees the validation samples too (accuracy says whether a mode can fit the
task at all), unless --held_out keeps a fixed tenth of them for validation.
One line per 100 steps (the loss is the last training batch's).

  build-torch2/venv/bin/python scripts/reasoning_probe.py --mode rmt

Python is here as a reference experiment only; the product trains with
rmt-train. Needs torch (scripts/torch_wheel.sh puts one in build-torch2/venv).
"""
import argparse
import random
import time
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOMS = ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]
DIRECTIONS = ["north", "south", "east", "west"]  # i ^ 1 is the opposite
WORDS = ["[PAD]", "[CLS]", "[SEP]", "the", "is", "of", "what", "?", "."]
WORDS += ROOMS + DIRECTIONS
IDS = {w: i for i, w in enumerate(WORDS)}


def sample(rng):
    """Two facts about room b, one of the four question forms, the answer."""
    a, b, c = rng.sample(ROOMS, 3)
    d1, d2 = rng.sample(range(4), 2)
    facts = [["the", a, "is", DIRECTIONS[d1], "of", "the", b, "."],
             ["the", c, "is", DIRECTIONS[d2], "of", "the", b, "."]]
    form = rng.randrange(4)
    room, direction = (a, d1) if form % 2 == 0 else (c, d2)
    if form < 2:  # "What is north of the b?"
        question = ["what", "is", DIRECTIONS[direction], "of", "the", b, "?"]
    else:  # "What is the b south of?"
        question = ["what", "is", "the", b, DIRECTIONS[direction ^ 1], "of",
                    "?"]
    if rng.random() < 0.5:
        facts.reverse()
    return facts[0] + facts[1], question, ROOMS.index(room)


def sample_more(rng, facts_per_sample):
    """`facts_per_sample` facts about room b (3 or 4; sample() draws bAbI's
    two), each with its own direction, a question about one of them in
    either form, the answer."""
    rooms = rng.sample(ROOMS, facts_per_sample + 1)
    b = rooms[0]
    directions = rng.sample(range(4), facts_per_sample)
    facts = [["the", room, "is", DIRECTIONS[d], "of", "the", b, "."]
             for room, d in zip(rooms[1:], directions)]
    asked = rng.randrange(facts_per_sample)
    room, direction = rooms[1 + asked], directions[asked]
    if rng.random() < 0.5:  # "What is north of the b?"
        question = ["what", "is", DIRECTIONS[direction], "of", "the", b, "?"]
    else:  # "What is the b south of?"
        question = ["what", "is", "the", b, DIRECTIONS[direction ^ 1], "of",
                    "?"]
    rng.shuffle(facts)
    return [w for fact in facts for w in fact], question, ROOMS.index(room)


def held_out(s):
    """A tenth of the 5,760 distinct samples, fixed: with --held_out only
    these are validated and training never sees them."""
    facts, question, _ = s
    return zlib.crc32(" ".join(facts + question).encode()) % 10 == 0


def draw(rng, validation, held_out_only, facts_per_sample=2):
    while True:
        s = (sample(rng) if facts_per_sample == 2
             else sample_more(rng, facts_per_sample))
        if not held_out_only or held_out(s) == validation:
            return s


def ids(sequences):
    return torch.tensor([[IDS[w] for w in s] for s in sequences])


class Encoder(nn.Module):
    def __init__(self, layers, mem_tokens, hidden=128, extra_words=0):
        super().__init__()
        self.words = nn.Embedding(len(WORDS) + extra_words, hidden)
        self.positions = nn.Embedding(96, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.memory = nn.Parameter(torch.randn(mem_tokens, hidden) * 0.02)
        layer = nn.TransformerEncoderLayer(hidden, 4, 4 * hidden, 0.0,
                                           activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.classifier = nn.Linear(hidden, len(ROOMS))

    def run(self, tokens, memory=None, appended=None):
        """[CLS] memory... rest: memory vectors stand after [CLS]. Appended
        vectors follow the rest after the position embeddings and the
        LayerNorm, as rmt-train's reader assist puts the document's states
        (--context product)."""
        x = self.words(tokens)
        if memory is not None:
            x = torch.cat([x[:, :1], memory, x[:, 1:]], 1)
        x = self.norm(x + self.positions(torch.arange(x.shape[1]))[None])
        if appended is not None:
            x = torch.cat([x, appended], 1)
        return self.encoder(x)


def bert_init(model, std, embed_std):
    """rmt-train's random initialisation (CreateRandomModel): every weight
    N(0, std) (BERT's 0.02), biases 0, LayerNorms the identity; the word and
    position embeddings N(0, embed_std)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in ("words.weight", "positions.weight"):
                param.normal_(0.0, embed_std)
            elif "norm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.normal_(0.0, std)


def torch_scales_init(model):
    """rmt-train's form at PyTorch's scales, tensor by tensor: every weight
    redrawn as N(0, the deviation PyTorch's default initialisation gave it:
    1 for the embeddings, about 0.06 for the attention's input projection,
    1/sqrt(3 * fan_in) for the other linear layers), biases 0, LayerNorms the
    identity."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                param.normal_(0.0, param.std().item())


MASK = len(WORDS)  # with --mlm_steps, one word more: [MASK]


def mlm_loss(model, batch, rng):
    """BERT's masked-language-model loss on the facts and the questions:
    15% of the words (at least one per sequence) become [MASK] and are
    predicted through the tied word embeddings. The sequences have no
    padding: every sample has the same length."""
    sequences = ids([["[CLS]"] + f + ["[SEP]"] for f, _, _ in batch])
    questions = ids([["[CLS]"] + q + ["[SEP]"] for _, q, _ in batch])
    loss = 0.0
    for tokens in (sequences, questions):
        inner = tokens.shape[1] - 2
        chosen = torch.zeros_like(tokens, dtype=torch.bool)
        for row in range(tokens.shape[0]):
            count = max(1, round(0.15 * inner))
            for column in rng.sample(range(1, inner + 1), count):
                chosen[row, column] = True
        masked = tokens.masked_fill(chosen, MASK)
        states = model.run(masked)[chosen]
        predicted = states @ model.words.weight.t()
        loss = loss + F.cross_entropy(predicted, tokens[chosen])
    return loss / 2


def logits(model, batch, mode, narrow_share, mem_tokens, context="probe"):
    if mode == "joint":
        joint = ids([["[CLS]"] + f + ["[SEP]"] + q + ["[SEP]"]
                     for f, q, _ in batch])
        return model.classifier(model.run(joint)[:, 0])
    if mode == "mix" and model.training:
        half = len(batch) // 2
        return torch.cat([logits(model, batch[:half], "joint", 0, mem_tokens),
                          logits(model, batch[half:], "rmt", 0, mem_tokens)])
    facts = ids([["[CLS]"] + f + ["[SEP]"] for f, _, _ in batch])
    questions = ids([["[CLS]"] + q + ["[SEP]"] for _, q, _ in batch])
    initial = model.memory[None].expand(len(batch), -1, -1)
    written = model.run(facts, initial)
    if mode == "wide":
        narrow_share = 0.0
    elif mode in ("rmt", "mix") or not model.training:
        narrow_share = 1.0
    narrow = int(round(len(batch) * narrow_share))
    cls = []
    if narrow > 0:
        slots = written[:narrow, 1:1 + mem_tokens]
        cls.append(model.run(questions[:narrow], slots)[:, 0])
    if narrow < len(batch):
        wide = written[narrow:]
        if context == "product":
            states = model.run(questions[narrow:], wide[:, 1:1 + mem_tokens],
                               appended=wide)
        else:
            states = model.run(questions[narrow:], wide)
        cls.append(states[:, 0])
    return model.classifier(torch.cat(cls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="rmt",
                        choices=["joint", "rmt", "wide", "mix", "drop"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--mem_tokens", type=int, default=8)
    parser.add_argument("--ramp", type=int, default=2500)
    parser.add_argument("--ramp_start", type=int, default=0)
    parser.add_argument("--init", default="torch",
                        choices=["torch", "bert", "torch_scales",
                                 "torch_zero_bias"],
                        help="torch: PyTorch's default initialisation; bert: "
                        "as rmt-train (weights N(0, --init_std), biases 0); "
                        "torch_scales: as rmt-train at PyTorch's deviation "
                        "for each weight; torch_zero_bias: PyTorch's with "
                        "every bias 0")
    parser.add_argument("--init_std", type=float, default=0.02)
    parser.add_argument("--embed_std", type=float, default=0.0,
                        help="with --init bert: the embeddings' std "
                        "(0: --init_std)")
    parser.add_argument("--facts", type=int, default=2, choices=[2, 3, 4],
                        help="facts per sample, each with its own direction")
    parser.add_argument("--mlm_steps", type=int, default=0,
                        help="first this many steps of masked-language "
                        "modelling on the facts and questions alone")
    parser.add_argument("--context", default="probe",
                        choices=["probe", "product"],
                        help="wide and drop: how the facts segment's outputs "
                        "enter the question segment: probe, in the memory's "
                        "place with position embeddings and the LayerNorm; "
                        "product, as rmt-train's reader assist: the m slots "
                        "in the memory's place, all the outputs after the "
                        "question without either")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--held_out", action="store_true",
                        help="validate on a tenth of the samples that "
                        "training never sees")
    args = parser.parse_args()
    if args.ramp < 1:
        parser.error("--ramp must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Encoder(args.layers, args.mem_tokens,
                    extra_words=1 if args.mlm_steps else 0)
    if args.init == "bert":
        bert_init(model, args.init_std, args.embed_std or args.init_std)
    elif args.init == "torch_scales":
        torch_scales_init(model)
    elif args.init == "torch_zero_bias":
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("bias") and "norm" not in name:
                    param.zero_()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                  weight_decay=0.01)
    rng = random.Random(args.seed)
    validation = [draw(random.Random(12345 + i), True, args.held_out,
                       args.facts)
                  for i in range(500)]
    answers = torch.tensor([y for _, _, y in validation])
    start = time.time()
    for step in range(args.steps):
        for group in optimizer.param_groups:  # 100 steps of warm-up
            group["lr"] = args.lr * min(1.0, (step + 1) / 100)
        batch = [draw(rng, False, args.held_out, args.facts)
                 for _ in range(args.batch_size)]
        if step < args.mlm_steps:
            loss = mlm_loss(model, batch, rng)
        else:
            narrow_share = min(1.0, max(0, step - args.mlm_steps -
                                        args.ramp_start) / args.ramp)
            out = logits(model, batch, args.mode, narrow_share,
                         args.mem_tokens, args.context)
            loss = F.cross_entropy(out,
                                   torch.tensor([y for _, _, y in batch]))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % 100 == 0:
            model.eval()
            with torch.no_grad():
                predicted = logits(model, validation, args.mode, 1.0,
                                   args.mem_tokens, args.context).argmax(-1)
            model.train()
            accuracy = (predicted == answers).float().mean().item()
            print(f"{args.mode} step {step + 1} loss {loss.item():.3f} "
                  f"accuracy {accuracy:.3f} {time.time() - start:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
