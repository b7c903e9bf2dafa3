#!/usr/bin/python3
"""Targets of bench/hybrid (issue 6) from the JSON the run wrote. Not a general tool.

Usage: hybrid_report.py CASCADE_JSON [SPLIT_JSON]

CASCADE_JSON is `hybridml demo --json` output with the policies local-only, cloud-only and cascade
over the links 4g and poor. Checks, per link and over all devices:
  - cascade accuracy >= the teacher's (cloud-only) accuracy - 0.5 points
  - cascade offloads at most 30 % of requests
  - cascade p50 latency <= 1.2 x local-only's p50
SPLIT_JSON (bench/hybrid_split's output), when given, is summarised too.
Prints a table of the checks and writes bench/results/hybrid_report.json beside CASCADE_JSON.
"""
import json
import os
import sys


def rows_by(report):
    return {(r["policy"], r["link"]): r for r in report["rows"]}


def cascade_checks(report):
    rows = rows_by(report)
    links = sorted({link for (_, link) in rows})
    checks = []
    for link in links:
        try:
            local, cloud, cascade = (rows[(p, link)] for p in ("local-only", "cloud-only", "cascade"))
        except KeyError as e:
            sys.exit(f"hybrid_report: no row {e} in the cascade JSON")
        checks.append({
            "link": link,
            "teacher_accuracy": cloud["accuracy"],
            "local_accuracy": local["accuracy"],
            "cascade_accuracy": cascade["accuracy"],
            "accuracy_met": cascade["accuracy"] >= cloud["accuracy"] - 0.005,
            "offload": cascade["offload"],
            "offload_met": cascade["offload"] <= 0.30,
            "local_p50_ms": local["p50_ms"],
            "cascade_p50_ms": cascade["p50_ms"],
            "p50_ratio": cascade["p50_ms"] / local["p50_ms"] if local["p50_ms"] > 0 else float("inf"),
        })
        checks[-1]["p50_met"] = checks[-1]["p50_ratio"] <= 1.2
    return checks


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cascade = json.load(open(sys.argv[1]))
    checks = cascade_checks(cascade)
    print("cascade vs teacher (cloud-only) and local-only, per link:")
    print(f"  {'link':<5} {'teacher':>8} {'local':>8} {'cascade':>8} {'>=T-0.5':>8} {'offload':>8} "
          f"{'<=30%':>6} {'p50 local':>10} {'p50 casc':>10} {'ratio':>6} {'<=1.2x':>6}")
    yes = {True: "met", False: "MISSED"}
    for c in checks:
        print(f"  {c['link']:<5} {100 * c['teacher_accuracy']:7.2f}% {100 * c['local_accuracy']:7.2f}% "
              f"{100 * c['cascade_accuracy']:7.2f}% {yes[c['accuracy_met']]:>8} "
              f"{100 * c['offload']:7.1f}% {yes[c['offload_met']]:>6} "
              f"{1000 * c['local_p50_ms']:8.1f}us {1000 * c['cascade_p50_ms']:8.1f}us "
              f"{c['p50_ratio']:6.2f} {yes[c['p50_met']]:>6}")
    out = {"benchmark": "hybrid", "cascade": checks}
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        out["split"] = json.load(open(sys.argv[2]))
    path = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), "hybrid_report.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
