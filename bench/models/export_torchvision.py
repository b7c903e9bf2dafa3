#!/usr/bin/python3
"""Exports torchvision models (random weights, nothing downloaded) for hybridml's benchmarks.

For each model writes, into the output directory:
  NAME.onnx          ONNX, opset 13, dynamic batch
  NAME.opset10.onnx  ONNX, opset 10 (OpenCV DNN 4.6 cannot read opset >= 11 Clip), with no
                     Identity node over an initializer (OpenCV cannot read those either)
  NAME.pt            TorchScript (traced), for the LibTorch peer
  NAME.input.pb      a fixed 1x3x224x224 input (ONNX TensorProto)
  NAME.output.pb     PyTorch's output for that input (ONNX TensorProto)

Usage: /usr/bin/python3 bench/models/export_torchvision.py OUT_DIR [NAME ...]
"""
import os
import sys
import time

import onnx
import onnx.numpy_helper
import torch
import torchvision

# Bump when the exported files change, so that stale exports are redone.
EXPORT_VERSION = "2"

MODELS = {
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "squeezenet1_1": lambda: torchvision.models.squeezenet1_1(weights=None),
}


def randomize_batchnorm(model):
    """Gives every BatchNorm non-trivial statistics, so BatchNorm folding is really exercised
    (fresh torchvision models have mean 0 / var 1, which folds to almost nothing)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)


def inline_identity_initializers(path):
    """Rewrites an ONNX file so that no Identity node reads an initializer: the exporter emits
    such nodes for deduplicated constants (e.g. equal biases), and OpenCV DNN 4.6 cannot read them
    (see FACTS.md). Each such node becomes a copy of the initializer under the node's output name.
    Returns the number of nodes replaced (0: the file is left untouched)."""
    model = onnx.load(path)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    keep, added = [], []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            added.append(copy)
        else:
            keep.append(node)
    if not added:
        return 0
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(added)
    onnx.save(model, path)
    return len(added)


def export(name, out_dir):
    torch.manual_seed(0)
    model = MODELS[name]()
    randomize_batchnorm(model)
    model.eval()
    x = torch.rand(1, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        y = model(x)
    base = os.path.join(out_dir, name)
    for opset, suffix in ((13, ""), (10, ".opset10")):
        torch.onnx.export(model, x, base + suffix + ".onnx", opset_version=opset,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
    with torch.no_grad():
        torch.jit.trace(model, x).save(base + ".pt")
    onnx.save_tensor(onnx.numpy_helper.from_array(x.numpy(), "input"), base + ".input.pb")
    onnx.save_tensor(onnx.numpy_helper.from_array(y.numpy(), "output"), base + ".output.pb")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    out_dir = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name in names:
        if name not in MODELS:
            print(f"unknown model {name}; known: {', '.join(MODELS)}", file=sys.stderr)
            return 2
        stamp = os.path.join(out_dir, name + ".version")
        fresh = os.path.exists(stamp) and open(stamp).read() == EXPORT_VERSION
        if not fresh:
            start = time.time()
            export(name, out_dir)
            with open(stamp, "w") as f:
                f.write(EXPORT_VERSION)
            print(f"exported {name} in {time.time() - start:.1f} s")
        # Also for files exported before this step existed; a no-op once done.
        replaced = inline_identity_initializers(os.path.join(out_dir, name + ".opset10.onnx"))
        if replaced:
            print(f"{name}.opset10.onnx: {replaced} Identity nodes over initializers inlined")
    return 0


if __name__ == "__main__":
    sys.exit(main())
