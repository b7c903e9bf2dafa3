#!/usr/bin/env python3
"""Helpers of bench/run_serving.sh: sweep rates, knee bisection, overload rate, and the report.

  serving_report.py runtime-alone RUNTIME.json          samples/s of the served model at max batch
  serving_report.py rates RUNTIME_ALONE FRACTIONS       the sweep's rates, comma-separated
  serving_report.py bisect LOADGEN.json...              the next rate to try between the last
                                                        passing and the first failing one ("" when
                                                        they are within 5 %)
  serving_report.py overload-rate LOADGEN.json...       3 x the knee's offered rate
  serving_report.py report OUT_DIR MODEL RESULT.json    prints the table, writes RESULT.json

The knee is the highest offered rate whose OK answers have p99 <= 50 ms with at most 1 % of the
requests not OK (rejected, past their deadline or failed), as bench/serving_batcher defines it.
"""
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys

BUDGET_MS = 50.0
# A point whose sender was later than this at worst was limited by the load generator's CPU.
CLIENT_LAG_MS = 50.0
MAX_NOT_OK = 0.01


def load_points(paths):
    points = []
    for path in paths:
        with open(path) as f:
            points.extend(json.load(f)["points"])
    return sorted(points, key=lambda p: p["offered_per_s"])


def passes(p):
    not_ok = p["sent"] - p["ok"]
    return p["ok"] > 0 and p["ok_latency"]["p99_ms"] <= BUDGET_MS and not_ok <= MAX_NOT_OK * p["sent"]


def knee(points):
    """The passing point of highest offered rate, or None."""
    best = None
    for p in points:
        if passes(p):
            best = p
    return best


def bisect(points):
    k = knee(points)
    lo = k["offered_per_s"] if k else 0.0
    failing = [p["offered_per_s"] for p in points if p["offered_per_s"] > lo and not passes(p)]
    if not failing:
        return ""
    hi = min(failing)
    if lo > 0 and hi / lo < 1.05:
        return ""
    return str(round((lo + hi) / 2))


def runtime_models(path):
    with open(path) as f:
        doc = json.load(f)
    return doc, doc["models"][-1]  # the served model comes last (after the built-in cnn28)


def parse_flops(inspect_txt):
    m = re.search(r"FLOPs: ([0-9.]+)([kMG]?)", inspect_txt)
    scale = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    return float(m.group(1)) * scale


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.*)", out)
        return m.group(1).strip() if m else platform.processor()
    except OSError:
        return platform.processor()


def report(out_dir, model, result_path):
    runtime_doc, runtime = runtime_models(os.path.join(out_dir, "runtime.json"))
    with open(os.path.join(out_dir, "inspect.txt")) as f:
        flops = parse_flops(f.read())
    gemm = runtime_doc.get("gemm", {})
    gemm_gflops = max(gemm.get("gflops_parallel_sessions", 0), gemm.get("gflops_threaded_session", 0))
    alone = {"dynamic": runtime["runtime_alone_per_s"], "none": runtime["runtime_alone_batch1_per_s"]}
    result = {
        "benchmark": "bench/serving",
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(),
                    "note": "server and load generator share these cores"},
        "model": model,
        "flops_per_sample": flops,
        "runtime_alone_per_s": {"batch_max": alone["dynamic"], "batch_1": alone["none"]},
        "server": {k: runtime_doc[k] for k in ("instances", "max_batch", "delay_us")},
        "gemm": gemm,
        "configs": {},
        "overload": {},
    }
    print("\nbench/serving: model %s, %.2f MFLOPs/sample; %d CPUs (%s), shared by server and loadgen"
          % (model, flops / 1e6, os.cpu_count(), result["machine"]["cpu"]))
    print("runtime alone (in process, %d x 1 thread): %.0f samples/s at batch %d, %.0f at batch 1"
          % (runtime_doc["instances"], alone["dynamic"], runtime_doc["max_batch"], alone["none"]))
    if gemm:
        print("fp32 GEMM %d^3 through the runtime: %.2f GFLOP/s (1 thread), %.2f (2 Sessions x 1 "
              "thread), %.2f (1 Session x 2 threads)" % (gemm["n"], gemm["gflops_1_thread"],
                                                          gemm["gflops_parallel_sessions"],
                                                          gemm["gflops_threaded_session"]))
    print("\n%-5s %-8s %10s %10s %8s %8s %8s %8s %8s %8s %7s %7s %7s" % (
        "proto", "batching", "offered/s", "goodput/s", "p50 ms", "p90 ms", "p99 ms", "p99.9",
        "rejected", "deadline", "errors", "lg cpu", "lag ms"))
    sweeps = {}
    for proto in ("grpc", "http"):
        for batching in ("dynamic", "none"):
            files = sorted(glob.glob(os.path.join(out_dir, "%s_%s.*.json" % (proto, batching))))
            if not files:
                continue
            points = load_points(files)
            sweeps[(proto, batching)] = points
            for p in points:
                lat = p["ok_latency"]
                print("%-5s %-8s %10.0f %10.0f %8.2f %8.2f %8.2f %8.2f %8d %8d %7d %7.2f %7.1f%s" % (
                    proto, batching, p["offered_per_s"], p["goodput_per_s"], lat["p50_ms"],
                    lat["p90_ms"], lat["p99_ms"], lat["p999_ms"], p["rejected"], p["deadline"],
                    p["errors"], p.get("client_cpu_cores", 0), p.get("max_send_lag_ms", 0),
                    "  <- knee" if p is knee(points) else ""))
            k = knee(points)
            knee_goodput = k["goodput_per_s"] if k else 0.0
            entry = {
                "points": points,
                "knee_offered_per_s": k["offered_per_s"] if k else 0.0,
                "knee_goodput_per_s": knee_goodput,
                "knee_p50_ms": k["ok_latency"]["p50_ms"] if k else None,
                "knee_p99_ms": k["ok_latency"]["p99_ms"] if k else None,
                "efficiency": knee_goodput / alone[batching] if alone[batching] else 0.0,
                "efficiency_denominator": "runtime alone at batch %s" % (
                    runtime_doc["max_batch"] if batching == "dynamic" else 1),
                "compute_fraction_of_gemm": flops * knee_goodput / (gemm_gflops * 1e9) if gemm_gflops else None,
            }
            result["configs"]["%s_%s" % (proto, batching)] = entry

    print("\nknee = highest offered rate with p99 <= %.0f ms and <= 1 %% not OK" % BUDGET_MS)
    print("%-5s %-8s %10s %8s %8s %11s %12s" % ("proto", "batching", "knee/s", "p50 ms", "p99 ms",
                                               "efficiency", "GEMM share"))
    for key, e in result["configs"].items():
        proto, batching = key.split("_")
        print("%-5s %-8s %10.0f %8s %8s %10.0f%% %11.1f%%" % (
            proto, batching, e["knee_goodput_per_s"],
            "%.2f" % e["knee_p50_ms"] if e["knee_p50_ms"] is not None else "-",
            "%.2f" % e["knee_p99_ms"] if e["knee_p99_ms"] is not None else "-",
            100 * e["efficiency"], 100 * (e["compute_fraction_of_gemm"] or 0)))
    if gemm_gflops:
        frac = flops * alone["dynamic"] / (gemm_gflops * 1e9)
        result["runtime_alone_compute_fraction_of_gemm"] = frac
        print("runtime alone at batch %d: %.1f%% of the GEMM throughput (FLOPs x samples/s / GEMM "
              "GFLOP/s)" % (runtime_doc["max_batch"], 100 * frac))

    # Dynamic batching vs none at the sweep's common rates: "worse" = less goodput (by more than
    # 2 %) or a higher p99 (by more than 10 % + 1 ms, the run-to-run noise here).
    for proto in ("grpc", "http"):
        dyn = {p["offered_per_s"]: p for p in sweeps.get((proto, "dynamic"), [])}
        non = {p["offered_per_s"]: p for p in sweeps.get((proto, "none"), [])}
        common = sorted(set(dyn) & set(non))
        worse = []
        for rate in common:
            d, n = dyn[rate], non[rate]
            if (d["goodput_per_s"] < 0.98 * n["goodput_per_s"] or
                    d["ok_latency"]["p99_ms"] > 1.1 * n["ok_latency"]["p99_ms"] + 1.0):
                worse.append(rate)
        gain = (result["configs"].get(proto + "_dynamic", {}).get("knee_goodput_per_s", 0) /
                max(1e-9, result["configs"].get(proto + "_none", {}).get("knee_goodput_per_s", 0)))
        result["configs"].setdefault(proto + "_dynamic", {})["batching_gain"] = gain
        result["configs"][proto + "_dynamic"]["rates_worse_than_none"] = worse
        print("%s: batching gain at the knee %.2fx; rates where dynamic batching is worse than none: %s"
              % (proto, gain, ", ".join("%.0f" % r for r in worse) or "none"))

    for proto in ("grpc", "http"):
        path = os.path.join(out_dir, "%s_overload.json" % proto)
        if not os.path.exists(path):
            continue
        p = load_points([path])[0]
        k = result["configs"].get(proto + "_dynamic", {}).get("knee_goodput_per_s", 0)
        o = {
            "offered_per_s": p["offered_per_s"],
            "goodput_per_s": p["goodput_per_s"],
            "goodput_fraction_of_knee": p["goodput_per_s"] / k if k else 0.0,
            "ok_p99_ms": p["ok_latency"]["p99_ms"],
            "rejected": p["rejected"], "deadline": p["deadline"], "errors": p["errors"],
            "sent": p["sent"],
            "rejected_p50_ms": p["rejected_latency"]["p50_ms"],
            "rejected_p99_ms": p["rejected_latency"]["p99_ms"],
            "loadgen_cpu_cores": p.get("client_cpu_cores", 0),
            "max_send_lag_ms": p.get("max_send_lag_ms", 0),
            # The sender fell far behind: the load generator, not the server, ran out of CPU.
            "client_limited": p.get("max_send_lag_ms", 0) > CLIENT_LAG_MS,
        }
        result["overload"][proto] = o
        print("%s overload at %.0f/s (3x knee): goodput %.0f/s = %.0f%% of the knee (target >= 90%%), "
              "p99 of OK %.2f ms (<= %.0f), rejected %d (p50 %.2f, p99 %.2f ms; target < 5), "
              "deadline %d, errors %d of %d"
              % (proto, o["offered_per_s"], o["goodput_per_s"], 100 * o["goodput_fraction_of_knee"],
                 o["ok_p99_ms"], BUDGET_MS, o["rejected"], o["rejected_p50_ms"], o["rejected_p99_ms"],
                 o["deadline"], o["errors"], o["sent"]))
        if o["client_limited"]:
            print("  (client-limited: the sender was up to %.0f ms late and the loadgen used %.2f cores; "
                  "this machine cannot offer this rate while serving)" % (o["max_send_lag_ms"],
                                                                          o["loadgen_cpu_cores"]))
    others_path = os.path.join(out_dir, "cpu_others.txt")
    if os.path.exists(others_path):
        with open(others_path) as f:
            others = {line.split()[0]: float(line.split()[1]) for line in f if line.strip()}
        result["other_processes_cpu_cores"] = others
        values = sorted(others.values())
        print("CPU used by other processes during the %d loadgen runs (cores of %d): min %.2f, "
              "median %.2f, max %.2f" % (len(values), os.cpu_count(), values[0],
                                         values[len(values) // 2], values[-1]))
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote %s" % result_path)


def main(argv):
    cmd = argv[1]
    if cmd == "runtime-alone":
        print("%.0f" % runtime_models(argv[2])[1]["runtime_alone_per_s"])
    elif cmd == "rates":
        alone = float(argv[2])
        print(",".join(str(max(1, round(alone * float(f)))) for f in argv[3].split(",")))
    elif cmd == "bisect":
        print(bisect(load_points(argv[2:])))
    elif cmd == "overload-rate":
        points = load_points(argv[2:])
        k = knee(points)
        print(str(round(3 * (k["offered_per_s"] if k else points[0]["offered_per_s"]))))
    elif cmd == "report":
        report(argv[2], argv[3], argv[4])
    else:
        sys.exit("serving_report.py: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
