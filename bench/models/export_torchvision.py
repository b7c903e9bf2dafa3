#!/usr/bin/python3
"""Exports torchvision models (random weights, nothing downloaded) for hybridml's benchmarks.

For each model writes, into the output directory:
  NAME.onnx          ONNX, opset 13, dynamic batch
  NAME.opset10.onnx  ONNX, opset 10 (OpenCV DNN 4.6 cannot read opset >= 11 Clip)
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
        if os.path.exists(os.path.join(out_dir, name + ".output.pb")):
            continue
        start = time.time()
        export(name, out_dir)
        print(f"exported {name} in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
