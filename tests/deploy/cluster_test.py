#!/usr/bin/env python3
"""The cluster of deploy/compose.yaml on loopback, with the real programs.

Three rmt-server replicas (through deploy/docker-entrypoint.sh, as in the
image) share a Redis session store and a snapshot key, behind nginx running
deploy/nginx/nginx.conf and scraped by Prometheus running
deploy/prometheus/prometheus.yml (both with only their addresses replaced).

  1. Eight conversations through nginx, each `rmt-client ask` on its own
     document. In the middle of one of them (after its third checkpoint),
     the replica that holds it is killed with SIGKILL. Its client resumes
     through nginx on another replica, and every final answer equals an
     uninterrupted run of the same document (same labels, scores within
     1e-6).
  2. Prometheus's HTTP API shows the three replicas up, then the killed one
     down.
  3. Whole-cluster restart: three kept sessions are checkpointed, every
     replica is killed with SIGKILL and started again, and each session
     still answers as before.

Prints the failover figures (time from the kill to the resumed stream,
bytes and tokens sent again).

  cluster_test.py RMT_SERVER RMT_CLIENT SOURCE_DIR

Exit 77 (skipped) when redis-server, nginx or prometheus is missing.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHECKPOINT_EVERY = 16  # segments; small, so the kill falls after several
QUESTION = "Where is Mary?"
# Each document: this many bytes of fortunes, around one fact.
DOC_BYTES = 160_000
SCORE_TOLERANCE = 1e-6


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=60.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")


class Cluster:
    def __init__(self, server, client, source, work, threads=1):
        self.server, self.client, self.source, self.work = (
            server, client, source, work)
        self.threads = threads  # intra-op threads per replica
        self.processes = []
        self.replicas = {}  # name -> (grpc_port, metrics_port, Popen)
        self.key_file = os.path.join(work, "snapshot_key")
        with open(self.key_file, "w") as f:
            f.write(secrets.token_hex(32) + "\n")

    def spawn(self, argv, log, **kwargs):
        out = open(log, "ab")
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, **kwargs)
        out.close()
        self.processes.append(process)
        return process

    def stop_all(self):
        # SIGTERM first: nginx's master then takes its workers with it.
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ---------------------------------------------------------------- Redis
    def start_redis(self):
        self.redis_port = free_port()
        self.spawn(["redis-server", "--port", str(self.redis_port),
                    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", self.work],
                   os.path.join(self.work, "redis.log"))

        def ready():
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port),
                                              timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        wait_for("redis-server", ready)

    # ------------------------------------------------------------- replicas
    def start_replica(self, name, grpc_port=None, metrics_port=None):
        grpc_port = grpc_port or free_port()
        metrics_port = metrics_port or free_port()
        log = os.path.join(self.work, f"{name}.log")
        env = dict(os.environ,
                   RMT_MODEL=os.path.join(self.source, "models/rmt-babi"),
                   RMT_LISTEN=f"127.0.0.1:{grpc_port}",
                   RMT_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
                   RMT_SESSION_STORE=f"redis://127.0.0.1:{self.redis_port}",
                   RMT_SNAPSHOT_KEY_FILE=self.key_file,
                   RMT_CHECKPOINT_EVERY_SEGMENTS=str(CHECKPOINT_EVERY),
                   RMT_INTRA_OP_THREADS=str(self.threads),
                   RMT_DRAIN_GRACE="1s")
        env.pop("RMT_SNAPSHOT_KEY", None)
        start = os.path.getsize(log) if os.path.exists(log) else 0
        process = self.spawn(
            [os.path.join(self.source, "deploy/docker-entrypoint.sh"),
             self.server], log, env=env, cwd=self.work)

        def started():
            if process.poll() is not None:
                raise Failure(f"{name} exited:\n{read(log)[start:]}")
            return "event=server_started" in read(log)[start:]
        wait_for(f"{name} to start", started, timeout=60)
        self.replicas[name] = (grpc_port, metrics_port, process)

    def kill_replica(self, name):
        process = self.replicas[name][2]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def holder_of(self, session_id):
        """The replica whose log shows the session's current stream."""
        for name in self.replicas:
            log = read(os.path.join(self.work, f"{name}.log"))
            if f"event=stream_opened method=Converse session={session_id}" \
                    in log:
                return name
        return None

    # ---------------------------------------------------------------- nginx
    def start_nginx(self):
        self.lb_port, health_port = free_port(), free_port()
        conf = read(os.path.join(self.source, "deploy/nginx/nginx.conf"))
        replaced = conf
        for i, name in enumerate(sorted(self.replicas), start=1):
            replaced = replaced.replace(
                f"server rmt-{i}:50051",
                f"server 127.0.0.1:{self.replicas[name][0]}")
        replaced = replaced.replace(
            "listen 8080 http2;", f"listen 127.0.0.1:{self.lb_port} http2;")
        replaced = replaced.replace(
            "listen 8081;", f"listen 127.0.0.1:{health_port};")
        changed = sum(a != b for a, b in zip(conf.splitlines(),
                                             replaced.splitlines()))
        if changed != 5:
            raise Failure(f"replaced {changed} lines of nginx.conf, not 5")
        path = os.path.join(self.work, "nginx.conf")
        with open(path, "w") as f:
            f.write(replaced)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        flags = ["-p", self.work, "-e", "stderr", "-c", path]
        subprocess.run([nginx, "-t", *flags, "-g",
                        f"pid {self.work}/nginx.pid;"], check=True,
                       capture_output=True)
        self.spawn([nginx, *flags, "-g",
                    f"pid {self.work}/nginx.pid; daemon off;"],
                   os.path.join(self.work, "nginx.log"))

        def healthy():
            try:
                return urllib.request.urlopen(
                    f"http://127.0.0.1:{health_port}/healthz",
                    timeout=1).read() == b"ok\n"
            except OSError:
                return False
        wait_for("nginx", healthy)

    # ----------------------------------------------------------- Prometheus
    def start_prometheus(self):
        self.prometheus_port = free_port()
        prom_dir = os.path.join(self.work, "prometheus")
        os.makedirs(prom_dir)
        conf = read(os.path.join(self.source,
                                 "deploy/prometheus/prometheus.yml"))
        targets = ", ".join(f'"127.0.0.1:{self.replicas[n][1]}"'
                            for n in sorted(self.replicas))
        replaced = conf.replace(
            'targets: ["rmt-1:9464", "rmt-2:9464", "rmt-3:9464"]',
            f"targets: [{targets}]").replace(
            'targets: ["localhost:9090"]',
            f'targets: ["127.0.0.1:{self.prometheus_port}"]')
        if replaced.count("127.0.0.1:") != 4:
            raise Failure("could not replace prometheus.yml's targets")
        with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
            f.write(replaced)
        shutil.copy(os.path.join(self.source, "deploy/prometheus/rules.yml"),
                    prom_dir)
        self.spawn(["prometheus",
                    f"--config.file={prom_dir}/prometheus.yml",
                    f"--storage.tsdb.path={prom_dir}/data",
                    f"--web.listen-address=127.0.0.1:{self.prometheus_port}"],
                   os.path.join(self.work, "prometheus.log"))

    def target_health(self):
        """metrics port -> "up" / "down" / "unknown", from Prometheus."""
        try:
            body = urllib.request.urlopen(
                f"http://127.0.0.1:{self.prometheus_port}/api/v1/targets",
                timeout=2).read()
        except OSError:
            return {}
        health = {}
        for target in json.loads(body)["data"]["activeTargets"]:
            if target["labels"].get("job") == "rmt":
                port = int(target["labels"]["instance"].rsplit(":", 1)[1])
                health[port] = target["health"]
        return health

    # --------------------------------------------------------------- client
    def ask(self, doc, log, extra=(), server=None):
        argv = [self.client, "ask", f"--server={server or self.lb_address()}",
                f"--question={QUESTION}", "--json", "--top_k=3", *extra]
        if doc is not None:
            argv.append(f"--doc={doc}")
        out = open(log + ".json", "wb")
        process = subprocess.Popen(argv, stdout=out,
                                   stderr=open(log + ".err", "wb"),
                                   stdin=subprocess.DEVNULL)
        out.close()
        self.processes.append(process)
        return process

    def lb_address(self):
        return f"127.0.0.1:{self.lb_port}"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def make_documents(work, count):
    """`count` documents of fortunes, each with one fact in its middle."""
    text = ""
    fortunes = "/usr/share/games/fortunes"
    for name in sorted(os.listdir(fortunes)):
        path = os.path.join(fortunes, name)
        if "." in name or not os.path.isfile(path):
            continue
        text += read(path)
    if len(text) < DOC_BYTES:
        raise Failure("not enough fortunes text (install fortunes)")
    places = ["office", "kitchen", "garden", "hallway", "bedroom", "bathroom"]
    paths = []
    for i in range(count):
        start = (i * 97_531) % (len(text) - DOC_BYTES)
        body = text[start:start + DOC_BYTES]
        middle = len(body) // 2
        fact = f"\nMary travelled to the {places[i % len(places)]}.\n"
        path = os.path.join(work, f"doc{i}.txt")
        with open(path, "w") as f:
            f.write(body[:middle] + fact + body[middle:])
        paths.append(path)
    return paths


def result_of(log, process):
    if process.wait() != 0:
        raise Failure(f"rmt-client failed ({process.returncode}):\n"
                      f"{read(log + '.err')}")
    return json.loads(read(log + ".json"))


def same_answer(got, want, what):
    a, b = got["answers"][0]["top_k"], want["answers"][0]["top_k"]
    if [x["label"] for x in a] != [x["label"] for x in b] or any(
            abs(x["score"] - y["score"]) > SCORE_TOLERANCE
            for x, y in zip(a, b)):
        raise Failure(f"{what}: {a} differs from the uninterrupted {b}")


def session_of(err_log, timeout=60):
    def find():
        m = re.search(r"rmt-client: session ([0-9a-f]{32})", read(err_log))
        return m and m.group(1)
    return wait_for(f"a session id in {err_log}", find, timeout=timeout)


def segments_of(cluster, session_id):
    out = subprocess.run(
        [cluster.client, "session", session_id, "--json",
         f"--server={cluster.lb_address()}"], capture_output=True)
    if out.returncode != 0:
        return 0
    return json.loads(out.stdout)["segments"]


def failover(cluster, docs):
    print("== 8 conversations through nginx; SIGKILL one's replica mid-way")
    logs = [os.path.join(cluster.work, f"conv{i}") for i in range(len(docs))]
    clients = [cluster.ask(doc, log) for doc, log in zip(docs, logs)]
    target = session_of(logs[0] + ".err")
    # After its third checkpoint, well before its end.
    wait_for("the conversation to pass three checkpoints",
             lambda: segments_of(cluster, target) >= 3 * CHECKPOINT_EVERY,
             timeout=120, every=0.02)
    victim = cluster.holder_of(target)
    if victim is None:
        raise Failure(f"no replica log shows session {target}")
    killed_at = time.time()
    cluster.kill_replica(victim)
    print(f"killed {victim} (SIGKILL), which held session {target}")
    results = [result_of(log, c) for log, c in zip(logs, clients)]
    return victim, killed_at, results


def check_prometheus(cluster, victim, live_ports):
    victim_port = cluster.replicas[victim][1]
    health = wait_for(
        "Prometheus to see the killed replica down and the others up",
        lambda: (lambda h: h if h.get(victim_port) == "down" and all(
            h.get(p) == "up" for p in live_ports) else None)(
                cluster.target_health()),
        timeout=90, every=0.5)
    print(f"Prometheus targets after the kill: {health}")


def main():
    server, client, source = sys.argv[1:4]
    # CTest's timeout sends SIGTERM: clean up as on any other exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    for tool in ("redis-server", "prometheus"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} is not installed "
                  "(scripts/install_deps.sh installs it)")
            return 77
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        print("SKIPPED: nginx is not installed")
        return 77
    work = tempfile.mkdtemp(prefix="rmt-cluster.")
    cluster = Cluster(server, client, source, work)
    try:
        cluster.start_redis()
        for name in ("rmt-1", "rmt-2", "rmt-3"):
            cluster.start_replica(name)
        cluster.start_nginx()
        cluster.start_prometheus()
        metrics_ports = [cluster.replicas[n][1] for n in cluster.replicas]
        health = wait_for(
            "Prometheus to see the three replicas up",
            lambda: (lambda h: h if all(h.get(p) == "up"
                                        for p in metrics_ports) else None)(
                cluster.target_health()),
            timeout=90, every=0.5)
        print(f"Prometheus targets: {health}")

        docs = make_documents(work, 8)
        victim, killed_at, results = failover(cluster, docs)
        live = [n for n in cluster.replicas if n != victim]
        check_prometheus(cluster, victim, [cluster.replicas[n][1]
                                           for n in live])

        # Uninterrupted runs of the same documents, on one live replica.
        direct = f"127.0.0.1:{cluster.replicas[live[0]][0]}"
        for i, doc in enumerate(docs):
            log = os.path.join(work, f"direct{i}")
            want = result_of(log, cluster.ask(doc, log, server=direct))
            same_answer(results[i], want, f"conversation {i}")
        resumed = [(i, r["resumes"]) for i, r in enumerate(results)
                   if r["resumes"]]
        if not results[0]["resumes"]:
            raise Failure("the conversation whose replica was killed did "
                          "not resume")
        print(f"all 8 answers equal uninterrupted runs; {len(resumed)} "
              "conversations resumed:")
        for i, events in resumed:
            for e in events:
                if e["started_over"]:
                    raise Failure(f"conversation {i} started over: its "
                                  "session had no checkpoint")
                print(f"  conversation {i}: resumed "
                      f"{e['resumed_at_unix'] - killed_at:.3f} s after the "
                      f"kill (break seen {e['broken_at_unix'] - killed_at:.3f}"
                      f" s after it) at byte {e['restored_bytes']}, segment "
                      f"{e['restored_segments']}; "
                      f"{e['bytes_sent'] - e['resent_from']} bytes sent "
                      "again (written by the client, most never read by "
                      "the lost replica); the server had reported "
                      f"{e['tokens_reported'] - e['restored_tokens']} tokens"
                      f" and {e['segments_reported'] - e['restored_segments']}"
                      " segments past the checkpoint")
                if e["restored_segments"] % CHECKPOINT_EVERY != 0:
                    raise Failure("a restore not at a checkpoint")

        print("== whole-cluster restart: kept sessions survive SIGKILL of "
              "every replica")
        cluster.start_replica(victim, *cluster.replicas[victim][:2])
        kept = []
        for i in range(3):
            log = os.path.join(work, f"kept{i}")
            result = result_of(log, cluster.ask(docs[i], log,
                                                extra=["--keep_alive"]))
            kept.append(result)
        # Written to the store when the keep-alive stream ended.
        wait_for("the kept sessions in Redis", lambda: all(
            subprocess.run(["redis-cli", "-p", str(cluster.redis_port),
                            "--scan", "--pattern", f"*{r['session_id']}*"],
                           capture_output=True, text=True).stdout.strip()
            for r in kept), timeout=30)
        for name in list(cluster.replicas):
            cluster.kill_replica(name)
        for name in sorted(cluster.replicas):
            cluster.start_replica(name, *cluster.replicas[name][:2])
        for i, result in enumerate(kept):
            log = os.path.join(work, f"after{i}")
            after = result_of(log, cluster.ask(
                None, log, extra=[f"--session={result['session_id']}"]))
            if after["tokens"] != result["tokens"]:
                raise Failure(f"kept session {i} holds {after['tokens']} "
                              f"tokens after the restart, not "
                              f"{result['tokens']}")
            same_answer(after, result, f"kept session {i} after the restart")
        print("3 kept sessions answer as before after the restart")
        print("PASS")
        return 0
    except Failure as failure:
        print(f"FAIL: {failure}")
        for name in sorted(os.listdir(work)):
            if name.endswith((".log", ".err")):
                print(f"--- {name} (last 30 lines)")
                print("\n".join(read(os.path.join(work, name))
                                .splitlines()[-30:]))
        return 1
    finally:
        cluster.stop_all()
        if os.environ.get("RMT_KEEP_TEST_DIR"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
