#!/usr/bin/python3
"""make bench-compare: the C++ step against the same step in Python eager.

Starts two workers and keeps them for the whole run:
  rmt-bench --worker            the C++ raw step and the C++ engine
  bench/eager_reference.py --worker   the same step in PyTorch eager
with the same thread count, the same environment and the same allocator
settings (both apply rmt::KeepTensorBuffersMapped's mallopt), and, for the
comparison to mean anything, the same LibTorch: Debian's python3-torch for
the Debian build (--python /usr/bin/python3), the venv's python for a wheel
build.

First the Python reference loads each model directory the C++ side uses
(a random config is saved to one) and must reproduce the C++ model's
memories and logits on the same input (padded and unpadded batches, a
question); then every measurement runs in rounds, C++ raw, C++ engine and
Python interleaved (the order rotating each round), one at a time, so
that a noisy shared machine slows all three alike. The table shows each
one's median tokens/s and the medians of the per-round ratios, with their
range.

  /usr/bin/python3 bench/bench_compare.py --bench build/bench/rmt-bench \\
      --configs models/rmt-babi,small --batches 1,16,64 --threads 2
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Worker:
    """A child process answering one line per command line."""

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     env=env, text=True, bufsize=1)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        words = reply.split()
        if not words or words[0] == "error":
            sys.exit("%s failed on %r: %s (log: %s)" %
                     (self.name, command, reply or "no reply, exited",
                      self.log_path))
        return words

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load():
    try:
        return "%.2f" % os.getloadavg()[0]
    except OSError:
        return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="build/bench/rmt-bench")
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="the interpreter whose torch is the C++ "
                        "build's LibTorch")
    parser.add_argument("--configs", default="models/rmt-babi,small")
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="least time per measurement (after 0.5 s of "
                        "warm-up)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work_dir", default="build/bench-compare",
                        help="model directories, check files, worker logs")
    args = parser.parse_args()
    configs = args.configs.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    os.makedirs(args.work_dir, exist_ok=True)

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    cpp = Worker("rmt-bench", [
        args.bench, "--worker", "--threads=%d" % args.threads,
        "--worker_dir=" + args.work_dir
    ], env, os.path.join(args.work_dir, "rmt-bench.log"))
    py = Worker("eager_reference.py", [
        args.python, os.path.join(HERE, "eager_reference.py"), "--worker",
        "--threads", str(args.threads)
    ], env, os.path.join(args.work_dir, "eager_reference.log"))
    torch_version = subprocess.run(
        [args.python, "-c", "import torch; print(torch.__version__)"],
        capture_output=True, text=True, env=env).stdout.strip()

    print("command: %s" % " ".join([os.path.basename(sys.argv[0])] +
                                   sys.argv[1:]))
    print("machine: %s, %d CPUs; %d torch threads on both sides; Python "
          "%s with torch %s; load average %s at start" %
          (cpu_model(), os.cpu_count(), args.threads,
           platform.python_version(), torch_version, load()))
    model_dirs = {}
    for config in configs:
        _, model_dir, check = cpp.ask("prepare " + config)
        model_dirs[config] = model_dir
        for variant in ("", " pruned"):
            _, error = py.ask("check %s %s%s" % (model_dir, check, variant))
            print("%s: Python eager%s vs the C++ model: max relative error "
                  "%s (memories after 3 segments, padded and not; logits)" %
                  (config, variant, error))
            if float(error) > 1e-5:
                sys.exit("the Python reference does not compute what the "
                         "C++ model computes")

    results = {}  # (config, batch, side) -> [tokens/s per round]
    sides = ["raw", "engine", "python", "pruned"]
    start = time.time()
    for r in range(args.rounds):
        for config in configs:
            for batch in batches:
                for i in range(len(sides)):
                    side = sides[(i + r) % len(sides)]
                    if side in ("python", "pruned"):
                        reply = py.ask("step %s %d %g%s" % (
                            model_dirs[config], batch, args.seconds,
                            " pruned" if side == "pruned" else ""))
                    else:
                        reply = cpp.ask("%s %s %d %g" % (
                            "step" if side == "raw" else "engine", config,
                            batch, args.seconds))
                    results.setdefault((config, batch, side),
                                       []).append(float(reply[1]))
        print("round %d of %d done (%.0f s, load average %s)" %
              (r + 1, args.rounds, time.time() - start, load()),
              file=sys.stderr)
    cpp.close()
    py.close()

    def ratio(config, batch, a, b):
        values = [x / y for x, y in zip(results[(config, batch, a)],
                                        results[(config, batch, b)])]
        return "%.2fx (%.2f-%.2f)" % (statistics.median(values), min(values),
                                      max(values))

    print("\nload average %s at the end; medians of %d rounds, ratios per "
          "round (median, range)\n" % (load(), args.rounds))
    print("| model | batch | C++ raw | C++ engine | Python eager | Python, "
          "last layer pruned | raw / Python | raw / Python pruned | "
          "engine / raw |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for config in configs:
        for batch in batches:
            med = {side: statistics.median(results[(config, batch, side)])
                   for side in sides}
            print("| %s | %d | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |" %
                  (config, batch, med["raw"], med["engine"], med["python"],
                   med["pruned"], ratio(config, batch, "raw", "python"),
                   ratio(config, batch, "raw", "pruned"),
                   ratio(config, batch, "engine", "raw")))
    print("\ntokens/s of content tokens; \"last layer pruned\": the Python "
          "step computes only the rows the step reads in the last layer, as "
          "the C++ one does")


if __name__ == "__main__":
    main()
