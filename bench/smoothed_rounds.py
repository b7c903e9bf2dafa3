#!/usr/bin/env python3
"""Rounds-to-accuracy of bench/federated runs on accuracy smoothed over a window of rounds.

The round target of issue 7 compares one round's accuracy (FedAvg's at round 60) with every round
of another strategy; with partial participation one round's accuracy moves by points. This reads
bench/federated JSON files and reports, on the trailing mean over --window rounds: FedAvg's value
at --at, the first round FedAvg itself reaches it, and the first round each other run does, with
its smoothed accuracy at --by.

Usage: bench/smoothed_rounds.py [--window 5] [--at 60] [--by 40] FILE.json...
"""
import argparse
import json


def trailing_mean(values, window):
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1):i + 1]
        out.append(sum(part) / len(part))
    return out


def first_reaching(values, target):
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--at", type=int, default=60)
    parser.add_argument("--by", type=int, default=40)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    for path in args.files:
        runs = {r["name"]: r["accuracy"] for r in json.load(open(path))["runs"]}
        if "fedavg" not in runs or len(runs["fedavg"]) < args.at:
            print(f"{path}: no FedAvg run of {args.at} rounds")
            continue
        fedavg = trailing_mean(runs["fedavg"], args.window)
        target = fedavg[args.at - 1]
        cells = [f"FedAvg mean@{args.at} {100 * target:.2f} % (itself first at "
                 f"{first_reaching(fedavg, target)})"]
        for name, acc in runs.items():
            if name in ("fedavg", "central"):
                continue
            smooth = trailing_mean(acc, args.window)
            at_by = f"{100 * smooth[args.by - 1]:.2f} %" if len(smooth) >= args.by else "-"
            cells.append(f"{name} {first_reaching(smooth, target) or 'never'} "
                         f"(mean@{args.by} {at_by})")
        print(f"{path}: " + " | ".join(cells))


if __name__ == "__main__":
    main()
