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
"""
import pathlib
import re
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
    k8s = {}
    for path in sorted((deploy / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") and "metadata" in doc:
                k8s.setdefault((doc["kind"], doc["metadata"]["name"], path.parent.name),
                               doc)
    config = k8s[("ConfigMap", "rmt-config", "k8s")]["data"]
    gpu = k8s[("Deployment", "rmt-server", "gpu")]
    gpu_env = {e["name"]: e["value"]
               for e in gpu["spec"]["template"]["spec"]["containers"][0]["env"]}
    settings = [("compose.yaml " + n, s.get("environment", {})) for n, s in replicas.items()]
    settings += [("k8s/configmap.yaml", config), ("k8s/gpu/deployment-gpu.yaml", gpu_env)]
    for where, env in settings:
        for variable in env:
            check(variable in known, f"{where}: {variable} is not a variable the entrypoint maps")

    for name, service in replicas.items():
        drain = seconds(service["environment"].get("RMT_DRAIN_GRACE", "30s"))
        check(seconds(service.get("stop_grace_period", "10s")) > drain,
              f"compose.yaml {name}: stop_grace_period is not longer than RMT_DRAIN_GRACE")

    deployment = k8s[("Deployment", "rmt-server", "k8s")]
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
        doc = k8s[(kind, name, "k8s")]
        chosen = doc["spec"]["selector"].get("matchLabels", doc["spec"]["selector"])
        check(chosen == selector, f"k8s: {kind} {name} does not select the replicas")
    check(k8s[("ConfigMap", "rmt-envoy", "k8s")]["data"]["envoy.yaml"].count("x-session-id") == 1,
          "k8s/envoy.yaml: no hash on x-session-id")

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
