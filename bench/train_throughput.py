#!/usr/bin/python3
# Copyright hybridml authors. Licensed under the Apache License 2.0.
#
# The Python peer of bench/train_throughput.cc: the same architectures as src/train/zoo.cc built
# with torch.nn, trained the way src/train/trainer.cc trains them, on Debian's python3-torch with
# one intra-op thread. Run with /usr/bin/python3 (the python3 first on PATH has no torch).
#
# One cell per invocation (--model, --batch, --optimizer), or, with --serve, one cell per line
# read from stdin ("MODEL BATCH OPTIMIZER STEPS WARMUP"; the C++ benchmark drives it that way so
# that torch is imported and the data read once). Prints one JSON line per cell
#   {"model":..., "batch":..., "optimizer":..., "parameters":..., "steps":..., "seconds":...,
#    "cpu_seconds":..., "samples_per_second":..., "samples_per_cpu_second":..., "final_loss":...}
# samples_per_cpu_second divides by the process CPU time of the timed epoch (time.process_time),
# which other processes on a busy machine disturb far less than wall time.
#
# What a timed step does, mirroring hml::train::Train step for step: gather the batch from the
# in-memory training set through a shuffled index order (data loading is INCLUDED, as in the
# C++ trainer's LoadBatch), forward to the logits, cross-entropy, loss.item() with a finiteness
# check, zero_grad, backward, optimiser step, and the argmax accuracy count. Once per timed epoch
# it also snapshots the weights (the C++ trainer does so to restore them on a NaN loss).
# Not timed: reading the dataset, building the model, the warm-up steps.
import argparse
import gzip
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    got = int.from_bytes(data[0:4], "big")
    if got != magic:
        raise ValueError(f"{path}: magic {got:#x}, expected {magic:#x}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data(source, n):
    """n samples as float [n,1,28,28] in [0,1] (the C++ reader's scaling) and int64 labels."""
    if source == "fashion":
        x = read_idx(f"{FASHION_DIR}/train-images-idx3-ubyte.gz", 0x803)[:n]
        y = read_idx(f"{FASHION_DIR}/train-labels-idx1-ubyte.gz", 0x801)[:n]
        x = torch.from_numpy(x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        return x.contiguous(), torch.from_numpy(y.astype(np.int64))
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def build_mlp(hidden, classes=10, features=784):
    layers = [nn.Flatten()]
    width = features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def build_cnn(channels, hidden, dropout, classes=10, chw=(1, 28, 28)):
    # zoo.cc BuildCnn: per stage Conv 3x3 pad 1 (with bias) -> BatchNorm (ONNX epsilon 1e-5,
    # momentum 0.9 == torch momentum 0.1) -> Relu -> MaxPool 2x2 stride 2; Flatten -> Gemm ->
    # Relu -> Dropout (only when > 0) -> Gemm. The Softmax is not on the training path.
    c, h, w = chw
    layers = []
    for k in channels:
        layers += [nn.Conv2d(c, k, 3, padding=1, bias=True), nn.BatchNorm2d(k, eps=1e-5,
                   momentum=0.1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        c, h, w = k, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, classes))
    return nn.Sequential(*layers)


def build(name):
    # zoo.cc BuildArchitecture.
    if name == "mlp":
        return build_mlp([256])
    if name == "student-cnn":
        return build_cnn([8, 16], 32, 0.0)
    if name == "teacher-cnn":
        return build_cnn([32, 64, 128], 256, 0.3)
    raise ValueError(f"unknown architecture {name!r} (mlp, student-cnn, teacher-cnn)")


def run_epoch(model, opt, x_all, y_all, batch, steps, gen):
    """One epoch of `steps` batches over the first steps*batch samples.

    Returns (wall seconds, process CPU seconds, mean loss)."""
    n = steps * batch
    start = time.perf_counter()
    cpu_start = time.process_time()
    _snapshot = [p.detach().clone() for p in model.parameters()]
    order = torch.randperm(n, generator=gen)
    loss_sum, correct, seen = 0.0, 0, 0
    model.train()
    for b in range(steps):
        idx = order[b * batch:(b + 1) * batch]
        x = x_all.index_select(0, idx)
        y = y_all.index_select(0, idx)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"loss is {loss_value} at batch {b + 1}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss_value * batch
        correct += int(logits.argmax(1).eq(y).sum().item())
        seen += batch
    return time.perf_counter() - start, time.process_time() - cpu_start, loss_sum / seen


def measure(model_name, batch, optimizer, steps, warmup, lr, x_all, y_all, seed):
    """One cell: a fresh model, `warmup` untimed steps, one timed epoch of `steps` steps."""
    torch.manual_seed(seed)
    model = build(model_name)
    params = list(model.parameters())
    if lr is None:
        lr = 0.01 if optimizer == "sgd" else 0.001
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=0.0)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=0.0)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    if max(steps, warmup) * batch > x_all.shape[0]:
        raise ValueError(f"{max(steps, warmup)} steps of {batch} exceed {x_all.shape[0]} samples")
    gen = torch.Generator().manual_seed(seed)
    if warmup > 0:
        run_epoch(model, opt, x_all, y_all, batch, warmup, gen)
    seconds, cpu_seconds, loss = run_epoch(model, opt, x_all, y_all, batch, steps, gen)
    return {
        "model": model_name, "batch": batch, "optimizer": optimizer,
        "parameters": sum(t.numel() for t in params), "steps": steps, "seconds": seconds,
        "cpu_seconds": cpu_seconds, "samples_per_second": steps * batch / seconds,
        "samples_per_cpu_second": steps * batch / cpu_seconds, "final_loss": loss,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="mlp")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=float, default=None, help="default: 0.01 (sgd), 0.001 (adam)")
    p.add_argument("--steps", type=int, default=100, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--data", choices=["fashion", "synthetic"], default="fashion")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--serve", action="store_true",
                   help="read cells from stdin, one 'MODEL BATCH OPTIMIZER STEPS WARMUP' a line")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    if a.serve:
        x_all, y_all = load_data(a.data, 60000)
        print(json.dumps({"ready": True}), flush=True)  # the driver waits for this
        for line in sys.stdin:
            f = line.split()
            if not f:
                continue
            try:
                r = measure(f[0], int(f[1]), f[2], int(f[3]), int(f[4]), a.lr, x_all, y_all,
                            a.seed)
            except Exception as e:  # reported to the driver, which names the cell
                r = {"error": str(e).replace('"', "'")}
            print(json.dumps(r), flush=True)
        return
    n = max(a.steps, a.warmup) * a.batch
    if n > 60000:
        sys.exit(f"steps * batch = {n} exceeds the 60000 training samples")
    x_all, y_all = load_data(a.data, n)
    print(json.dumps(measure(a.model, a.batch, a.optimizer, a.steps, a.warmup, a.lr, x_all,
                             y_all, a.seed)))


if __name__ == "__main__":
    main()
