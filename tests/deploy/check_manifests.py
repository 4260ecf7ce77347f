#!/usr/bin/env python3
"""Consistency of deploy/ with rmt-server and with itself.

    check_manifests.py RMT_SERVER SOURCE_DIR

- deploy/docker-entrypoint.sh maps a variable to every flag server/main.cc
  defines (per `rmt-server --helpfull`), and each flag it names exists.
- Every RMT_* setting in compose.yaml and the Kubernetes manifests is one the
  entrypoint maps.
- Shutdown fits: compose's stop_grace_period and Kubernetes'
  terminationGracePeriodSeconds exceed preStop + RMT_DRAIN_GRACE, and the
  liveness probe's window is longer than that (a draining replica answers
  NOT_SERVING and must not be restarted).
- The gRPC probes, ports and load balancer targets agree: every compose
  replica is an nginx upstream and a Prometheus target.
- The session store is wired: every replica (compose; the CPU and the GPU
  Kubernetes variants, as their kustomizations assemble them) has
  RMT_SESSION_STORE=redis://HOST:PORT naming a Redis that exists there
  (compose: a service the replica depends on; Kubernetes: a Service whose
  port leads to a Redis Deployment's container), all replicas the same one
  and the same snapshot key from a mounted secret; Redis is not published
  and never evicts checkpoints. Where kubectl is installed, `kubectl
  kustomize` builds both variants into the same objects.
"""
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


def seconds(duration):
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)(ms|s|m|h)", str(duration)):
        total += float(value) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def kustomize(directory):
    """The objects a kustomization's resources hold, by (kind, name), files
    and directories followed the way `kubectl kustomize` does, and the
    documents of its patches."""
    objects = {}
    if not (directory / "kustomization.yaml").is_file():
        errors.append(f"{directory}: no kustomization.yaml")
        return objects, []
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            # kustomize refuses an overlay inside the base it names (a cycle).
            check(path not in directory.resolve().parents,
                  f"{directory}/kustomization.yaml: resource {resource} contains "
                  "this directory; kustomize refuses the cycle")
            objects.update(kustomize(path)[0])
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") and "metadata" in doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    patches = [yaml.safe_load((directory / p["path"]).read_text())
               for p in spec.get("patches", [])]
    return objects, patches


def patched_container(base, patch):
    """base's first container with a strategic-merge patch's env applied
    (merged by name) and its other keys replaced."""
    container = dict(base)
    for key, value in patch.items():
        if key == "env":
            env = {e["name"]: e for e in base.get("env", [])}
            env.update({e["name"]: e for e in value})
            container["env"] = list(env.values())
        elif key != "name":
            container[key] = value
    return container


def redis_address(value):
    """(host, port) of a redis://HOST[:PORT][/DB] store, or None."""
    match = re.fullmatch(r"redis://([^:/]+)(?::(\d+))?(?:/\d+)?", str(value or ""))
    return (match.group(1), int(match.group(2) or 6379)) if match else None


def check_redis_args(where, args):
    args = [str(a) for a in args or []]
    check("--maxmemory-policy" in args and
          args[args.index("--maxmemory-policy") + 1:][:1] == ["noeviction"],
          f"{where}: Redis must run with --maxmemory-policy noeviction (a full "
          "store refuses checkpoints, counted and alerted, instead of evicting "
          "other sessions' ones)")
    return redis_port(args)


def redis_port(args):
    args = [str(a) for a in args or []]
    return int(args[args.index("--port") + 1]) if "--port" in args else 6379


def check_k8s_store(variant, objects, container):
    """The replicas' RMT_SESSION_STORE names a Service of this variant that
    leads to a Redis container."""
    env = {}
    for source in container.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        check(("ConfigMap", name) in objects,
              f"{variant}: rmt-server takes its env from ConfigMap {name}, which is missing")
        env.update(objects.get(("ConfigMap", name), {}).get("data", {}))
    env.update({e["name"]: e.get("value") for e in container.get("env", [])})
    store = env.get("RMT_SESSION_STORE")
    address = redis_address(store)
    check(address, f"{variant}: rmt-server's RMT_SESSION_STORE is {store!r}, "
          "not redis://HOST:PORT (replicas need a shared store to restore "
          "each other's sessions)")
    if not address:
        return
    host, port = address
    service = objects.get(("Service", host.split(".")[0]))
    check(service, f"{variant}: RMT_SESSION_STORE names {host}, which is no Service here")
    if not service:
        return
    ports = [p for p in service["spec"]["ports"] if p["port"] == port]
    check(ports, f"{variant}: Service {host} has no port {port} (RMT_SESSION_STORE={store})")
    selector = service["spec"].get("selector", {})
    backends = [d for (kind, _), d in objects.items() if kind == "Deployment" and
                selector and selector.items() <=
                d["spec"]["template"]["metadata"]["labels"].items()]
    check(len(backends) == 1 and
          backends[0]["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis"),
          f"{variant}: Service {host} does not select one Redis Deployment")
    if not ports or len(backends) != 1:
        return
    redis = backends[0]["spec"]["template"]["spec"]["containers"][0]
    listens = check_redis_args(f"{variant}: Deployment {backends[0]['metadata']['name']}",
                               redis.get("args", redis.get("command")))
    target = ports[0].get("targetPort", port)
    check(any(p["containerPort"] == listens and target in (p.get("name"), listens)
              for p in redis.get("ports", [])),
          f"{variant}: Service {host} port {port} targets {target}, not Redis's "
          f"port {listens}")
    key_file = env.get("RMT_SNAPSHOT_KEY_FILE", "")
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    check(any(key_file.startswith(m.rstrip("/") + "/") for m in mounts),
          f"{variant}: RMT_SNAPSHOT_KEY_FILE {key_file!r} is not in a mounted "
          "volume (every replica needs the same snapshot key)")


def main(server, source):
    root = pathlib.Path(source)
    deploy = root / "deploy"

    entrypoint = (deploy / "docker-entrypoint.sh").read_text()
    table = re.search(r"RMT_FLAG_TABLE='\n(.*?)'", entrypoint, re.S).group(1)
    mapped = dict(line.split() for line in table.splitlines() if line.strip())
    help_text = subprocess.run([server, "--helpfull"], capture_output=True,
                               text=True).stdout
    section = re.search(r"Flags from \S*server/main\.cc:\n(.*?)(?:\n  Flags from|\Z)",
                        help_text, re.S)
    check(section, "rmt-server --helpfull lists no flags of server/main.cc")
    server_flags = set(re.findall(r"^    --(\w+)", section.group(1) if section else "",
                                  re.M))
    for variable, flag in mapped.items():
        check(flag in server_flags,
              f"docker-entrypoint.sh maps {variable} to --{flag}, which rmt-server lacks")
        check(variable == "RMT_" + flag.upper(),
              f"docker-entrypoint.sh: {variable} should be named RMT_{flag.upper()}")
    for flag in sorted(server_flags - set(mapped.values())):
        errors.append(f"rmt-server --{flag} has no variable in docker-entrypoint.sh: "
                      f"add RMT_{flag.upper()} {flag} to RMT_FLAG_TABLE")
    known = set(mapped) | {"RMT_SNAPSHOT_KEY"}

    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    replicas = {name: s for name, s in compose["services"].items()
                if s.get("image", "").startswith("rmt-serve")}
    check(len(replicas) >= 2, "compose.yaml: fewer than two rmt-server replicas")
    # Each variant as `kubectl apply -k` assembles it.
    k8s, k8s_patches = kustomize(deploy / "k8s")
    gpu_objects, gpu_patches = kustomize(deploy / "k8s-gpu")
    check(set(gpu_objects) == set(k8s),
          "k8s-gpu/kustomization.yaml does not take every object of k8s/")
    for variant in ("k8s", "k8s-gpu"):
        if shutil.which("kubectl"):
            built = subprocess.run(["kubectl", "kustomize", str(deploy / variant)],
                                   capture_output=True, text=True)
            check(built.returncode == 0,
                  f"kubectl kustomize deploy/{variant} fails: {built.stderr.strip()}")
            rendered = {(d["kind"], d["metadata"]["name"])
                        for d in yaml.safe_load_all(built.stdout) if d}
            check(built.returncode != 0 or rendered == set(k8s),
                  f"kubectl kustomize deploy/{variant} builds {sorted(rendered)}, "
                  f"not {sorted(k8s)}")
    check(not k8s_patches, "k8s/kustomization.yaml has patches: these checks read "
          "the CPU variant's files as they are")
    config = k8s[("ConfigMap", "rmt-config")]["data"]
    gpu = [p for p in gpu_patches
           if (p.get("kind"), p["metadata"]["name"]) == ("Deployment", "rmt-server")]
    check(len(gpu) == 1, "k8s-gpu: no patch of the rmt-server Deployment")
    gpu_patch = gpu[0]["spec"]["template"]["spec"]["containers"][0] if gpu else {}
    gpu_env = {e["name"]: e["value"] for e in gpu_patch.get("env", [])}
    settings = [("compose.yaml " + n, s.get("environment", {})) for n, s in replicas.items()]
    settings += [("k8s/configmap.yaml", config), ("k8s-gpu/deployment-gpu.yaml", gpu_env)]
    for where, env in settings:
        for variable in env:
            check(variable in known, f"{where}: {variable} is not a variable the entrypoint maps")

    for name, service in replicas.items():
        drain = seconds(service["environment"].get("RMT_DRAIN_GRACE", "30s"))
        check(seconds(service.get("stop_grace_period", "10s")) > drain,
              f"compose.yaml {name}: stop_grace_period is not longer than RMT_DRAIN_GRACE")

    deployment = k8s[("Deployment", "rmt-server")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    drain = seconds(config.get("RMT_DRAIN_GRACE", "30s"))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    check(pre_stop[0] == "sleep", "k8s: preStop is expected to be a sleep")
    shutdown = float(pre_stop[1]) + drain
    check(pod["terminationGracePeriodSeconds"] > shutdown,
          f"k8s: terminationGracePeriodSeconds must exceed preStop + drain ({shutdown}s)")
    live = container["livenessProbe"]
    check(live["periodSeconds"] * live["failureThreshold"] > shutdown,
          f"k8s: the liveness window must exceed preStop + drain ({shutdown}s)")
    grpc_port = {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        check(container[probe]["grpc"]["port"] == grpc_port,
              f"k8s: {probe} does not probe the gRPC port")
    selector = deployment["spec"]["selector"]["matchLabels"]
    for kind, name in (("Service", "rmt"), ("Service", "rmt-headless"),
                       ("PodDisruptionBudget", "rmt-server")):
        doc = k8s[(kind, name)]
        chosen = doc["spec"]["selector"].get("matchLabels", doc["spec"]["selector"])
        check(chosen == selector, f"k8s: {kind} {name} does not select the replicas")
    check(k8s[("ConfigMap", "rmt-envoy")]["data"]["envoy.yaml"].count("x-session-id") == 1,
          "k8s/envoy.yaml: no hash on x-session-id")

    # The session store, in each Kubernetes variant and in compose.
    check_k8s_store("k8s", k8s, container)
    check_k8s_store("k8s-gpu", gpu_objects, patched_container(container, gpu_patch))
    for name, service in compose["services"].items():
        if str(service.get("image", "")).startswith("redis"):
            check_redis_args(f"compose.yaml {name}", service.get("command"))
            check("ports" not in service,
                  f"compose.yaml {name}: Redis has no password; do not publish it")
    stores = {name: s["environment"].get("RMT_SESSION_STORE") for name, s in replicas.items()}
    keys = {name: s["environment"].get("RMT_SNAPSHOT_KEY_FILE") for name, s in replicas.items()}
    check(len(set(stores.values())) == 1 and len(set(keys.values())) == 1,
          f"compose.yaml: the replicas must share one store and one snapshot key "
          f"({stores}, {keys})")
    for name, service in replicas.items():
        store = service["environment"].get("RMT_SESSION_STORE")
        address = redis_address(store)
        check(address, f"compose.yaml {name}: RMT_SESSION_STORE is {store!r}, "
              "not redis://HOST:PORT")
        if address:
            redis = compose["services"].get(address[0])
            check(redis and str(redis.get("image", "")).startswith("redis"),
                  f"compose.yaml {name}: RMT_SESSION_STORE names {address[0]}, "
                  "which is no Redis service")
            if redis:
                check(redis_port(redis.get("command")) == address[1],
                      f"compose.yaml {name}: {address[0]} does not listen on {address[1]}")
            check(address[0] in service.get("depends_on", []),
                  f"compose.yaml {name}: does not depend on {address[0]} (rmt-server "
                  "exits when its store is unreachable at start)")
        key_file = service["environment"].get("RMT_SNAPSHOT_KEY_FILE", "")
        check(key_file.startswith("/run/secrets/") and
              key_file.rsplit("/", 1)[1] in service.get("secrets", []),
              f"compose.yaml {name}: RMT_SNAPSHOT_KEY_FILE is not a mounted secret")

    nginx = (deploy / "nginx" / "nginx.conf").read_text()
    upstreams = set(re.findall(r"^\s*server (\S+?):50051\b", nginx, re.M))
    check(upstreams == set(replicas),
          f"nginx.conf upstreams {sorted(upstreams)} != compose replicas {sorted(replicas)}")
    check("hash $http_x_session_id consistent;" in nginx, "nginx.conf: no hash on x-session-id")
    prometheus = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    targets = {t.split(":")[0] for job in prometheus["scrape_configs"] if job["job_name"] == "rmt"
               for sc in job["static_configs"] for t in sc["targets"]}
    check(targets == set(replicas),
          f"prometheus.yml targets {sorted(targets)} != compose replicas {sorted(replicas)}")

    for error in errors:
        print("FAIL:", error)
    print(f"{len(mapped)} entrypoint variables, {len(server_flags)} server flags, "
          f"{len(k8s)} Kubernetes objects checked")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
