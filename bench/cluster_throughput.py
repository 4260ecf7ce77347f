#!/usr/bin/env python3
"""Throughput of three replicas behind nginx against one replica direct.

Starts the loopback cluster of tests/deploy/cluster_test.py (Redis, three
rmt-server replicas on the bundled model, nginx with deploy/nginx/nginx.conf)
and one more replica on its own, then runs rmt-loadgen against each in turn,
ROUNDS times interleaved, and prints tokens/s side by side with the ratio.
Every replica shares the machine's cores: on a machine with fewer cores than
replicas the ratio measures the load balancer's overhead and the cost of
running several processes, not scaling out.

  bench/cluster_throughput.py BUILD_DIR [--sessions S] [--tokens N]
      [--rounds R] [--threads T]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SOURCE, "tests", "deploy"))
import cluster_test  # noqa: E402  (the same cluster the test runs)


def loadgen(build, server, sessions, tokens):
    out = subprocess.run(
        [os.path.join(build, "client", "rmt-loadgen"), f"--server={server}",
         f"--sessions={sessions}", f"--tokens={tokens}", "--json"],
        check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"rmt-loadgen errors: {result['error_messages']}")
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--sessions", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of every replica")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up
    build = os.path.abspath(args.build)
    work = tempfile.mkdtemp(prefix="rmt-cluster-bench.")
    cluster = cluster_test.Cluster(
        os.path.join(build, "server", "rmt-server"),
        os.path.join(build, "client", "rmt-client"), SOURCE, work,
        threads=args.threads)
    try:
        cluster.start_redis()
        for name in ("rmt-1", "rmt-2", "rmt-3"):
            cluster.start_replica(name)
        cluster.start_nginx()
        cluster.start_replica("direct")
        direct = f"127.0.0.1:{cluster.replicas['direct'][0]}"
        rows = []
        for _ in range(args.rounds):
            one = loadgen(build, direct, args.sessions, args.tokens)
            three = loadgen(build, cluster.lb_address(), args.sessions,
                            args.tokens)
            rows.append((one, three))
        print(f"nproc {os.cpu_count()}, intra-op threads per replica "
              f"{args.threads}, {args.sessions} sessions x {args.tokens} "
              "tokens, bundled model")
        print("| round | 1 replica direct tok/s | 3 replicas via nginx tok/s "
              "| ratio | answer p99 ms (1 / 3) |")
        print("|---:|---:|---:|---:|---:|")
        for i, (one, three) in enumerate(rows, start=1):
            print(f"| {i} | {one['tokens_per_second']:.0f} | "
                  f"{three['tokens_per_second']:.0f} | "
                  f"{three['tokens_per_second'] / one['tokens_per_second']:.2f}"
                  f"x | {one['answer_latency_ms']['p99']:.0f} / "
                  f"{three['answer_latency_ms']['p99']:.0f} |")
    finally:
        cluster.stop_all()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
