#!/usr/bin/env python3
"""Checks that every metric a PromQL expression names is one rmt-server exports.

    promql_metrics.py METRICS_TEXT DASHBOARD.json... RULES.yml...

METRICS_TEXT is a scrape of a live rmt-server's /metrics. The expressions are
every `expr` of the Grafana dashboards and of the Prometheus rule files. A
name is exported when the scrape declares it (`# TYPE`) with a kind that has
it (a histogram `x` has x_bucket, x_sum and x_count, never a bare x) and has
at least one sample of it. Prometheus's own scrape series (up, scrape_*) count
as exported. Exit 0 when all are, 1 with the offenders listed otherwise.
"""
import json
import re
import sys

import yaml

PROMETHEUS_SERIES = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
}
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on",
    "ignoring", "group_left", "group_right", "inf", "nan", "atan2",
    # Aggregation operators: `sum by (le) (...)` puts a clause between the
    # name and its parenthesis.
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}
SUFFIXES = {
    "counter": [""], "gauge": [""], "untyped": [""],
    "histogram": ["_bucket", "_sum", "_count"],
    "summary": ["", "_sum", "_count"],
}


def metric_names(expr):
    """The metric names an expression selects (functions, keywords, labels,
    strings, durations and Grafana variables removed)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^{}]*\}", "{}", s)          # label matchers
    s = re.sub(r"\[[^\[\]]*\]", "[]", s)        # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)",
               r"\1", s)                         # grouping labels
    names = set()
    for m in re.finditer(r"\$\{?\w+\}?|\d[\w.]*|([A-Za-z_:][\w:]*)(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if name is None or call or name in KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(text):
    """Series names the scrape declares and has samples of."""
    declared = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        declared.update(family + suffix for suffix in SUFFIXES.get(kind, [""]))
    sampled = set(re.findall(r"^([A-Za-z_:][\w:]*)[{ ]", text, re.M))
    return (declared & sampled) | PROMETHEUS_SERIES


def expressions(path):
    if path.endswith(".json"):
        with open(path) as f:
            dashboard = json.load(f)
        found = []

        def walk(panels):
            for panel in panels:
                for target in panel.get("targets", []):
                    if target.get("expr"):
                        found.append((f'{path}: panel "{panel.get("title")}"',
                                      target["expr"]))
                walk(panel.get("panels", []))

        walk(dashboard.get("panels", []))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            match = re.match(r"label_values\((.*),\s*\w+\)$", query or "")
            if match:
                found.append((f'{path}: variable "{variable["name"]}"',
                              match.group(1)))
        return found
    with open(path) as f:
        rules = yaml.safe_load(f)
    return [(f'{path}: {r.get("alert") or r.get("record")}', r["expr"])
            for group in rules["groups"] for r in group["rules"]]


def self_test():
    cases = {
        'histogram_quantile(0.99, sum by (le, instance) (rate(a_bucket{job="rmt", x=~"$i"}[$__rate_interval])))':
            {"a_bucket"},
        'rmt_active_sessions / rmt_max_sessions > 0.9': {"rmt_active_sessions", "rmt_max_sessions"},
        'sum by (code) (rate(r_total{code!="OK"}[5m] offset 1h)) / on (job) group_left up':
            {"r_total", "up"},
        'increase(f_total[5m]) > 0 and c == 1': {"f_total", "c"},
        'up{job="rmt"} == 0': {"up"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        assert got == want, f"metric_names({expr!r}) = {got}, want {want}"
    text = ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"
            "# TYPE c counter\nc 1\n# TYPE g gauge\n")
    got = exported_names(text) - PROMETHEUS_SERIES
    assert got == {"h_bucket", "h_sum", "h_count", "c"}, got


def main(argv):
    self_test()
    with open(argv[1]) as f:
        exported = exported_names(f.read())
    checked, bad = 0, []
    for path in argv[2:]:
        for where, expr in expressions(path):
            names = metric_names(expr)
            if not names:
                bad.append(f"{where}: names no metric: {expr}")
            for name in sorted(names - exported):
                bad.append(f"{where}: {name} is not exported (expr: {expr.strip()})")
            checked += 1
    if checked == 0:
        print("FAIL: no expressions found")
        return 1
    for line in bad:
        print("FAIL:", line)
    print(f"{checked} expressions checked against {len(exported)} exported series names")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
