#!/usr/bin/python3
"""Train a small MLP on scikit-learn's 8x8 digits with fake quantization (4-bit per-channel weights, 8-bit
activations) and write it as a Brevitas-style QONNX model: float weights, each behind its own Quant node
(domain qonnx.custom_op.general, inputs scale / zeropt / bitwidth, attributes signed / narrow / rounding_mode),
float biases in the Gemm, Quant on the input, after each ReLU (unsigned) and on the output. Brevitas is not
needed: the quantizer below is QONNX's definition (x / scale + zeropt, clamp, round half to even, rescale).
Writes model.onnx, test_x.npy / test_y.npy (the held-back digits) and float_accuracy.txt next to this script.

Run with Debian's interpreter: /usr/bin/python3 examples/qonnx_mlp_digits/make_model.py
"""
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from digits_data import load_split, train  # noqa: E402
torch.manual_seed(0)
np.random.seed(0)

DOMAIN = "qonnx.custom_op.general"
WEIGHT_BITS, ACT_BITS = 4, 8
DIMS = [64, 48, 24, 10]


def int_range(bits, signed, narrow):
    """QONNX's min_int / max_int."""
    if signed:
        return -(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1 - (1 if narrow else 0)


def fake_quant(x, scale, bits, signed, narrow):
    """QONNX Quant with zero point 0 and ROUND, with a straight-through gradient."""
    lo, hi = int_range(bits, signed, narrow)
    q = torch.round(torch.clamp(x / scale, lo, hi)) * scale
    return x + (q - x).detach()


def weight_scale(w):
    """Per output channel: the largest |w| of the row maps to the largest 4-bit code (narrow signed: 7)."""
    return (w.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / int_range(WEIGHT_BITS, True, True)[1])


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(DIMS[i], DIMS[i + 1]) for i in range(len(DIMS) - 1))
        self.act_scales = None  # per ReLU output and for the logits, set by calibrate()

    def forward(self, x, quant=False):
        if quant:
            x = fake_quant(x, 1 / 255, ACT_BITS, False, False)
        for i, fc in enumerate(self.fcs):
            w = fake_quant(fc.weight, weight_scale(fc.weight), WEIGHT_BITS, True, True) if quant else fc.weight
            x = nn.functional.linear(x, w, fc.bias)
            last = i == len(self.fcs) - 1
            if not last:
                x = torch.relu(x)
            if quant:
                x = fake_quant(x, self.act_scales[i], ACT_BITS, not last, False)
        return x

    def calibrate(self, x):
        """Activation scales from the float model's ranges: unsigned after ReLU, signed for the logits."""
        scales = []
        with torch.no_grad():
            for i, fc in enumerate(self.fcs):
                x = fc(x)
                last = i == len(self.fcs) - 1
                if not last:
                    x = torch.relu(x)
                top = float(x.abs().max())
                scales.append(np.float32(top / (127 if last else 255)))
        self.act_scales = scales


def f32(a):
    return np.asarray(a, dtype=np.float32)


def export(model, path):
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(f32(value), name))
        return name

    def quant(x, name, scale, bits, signed, narrow):
        nodes.append(helper.make_node(
            "Quant", [x, const(name + "_scale", scale), const(name + "_zeropt", 0.0), const(name + "_bitwidth", float(bits))],
            [name], name=name, domain=DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"))
        return name

    cur = quant("pixels", "input_quant", 1 / 255, ACT_BITS, False, False)
    for i, fc in enumerate(model.fcs):
        w = fc.weight.detach().numpy()
        wq = quant(const(f"fc{i}_weight", w), f"fc{i}_weight_quant", weight_scale(fc.weight).numpy(), WEIGHT_BITS, True, True)
        y = f"fc{i}_out"
        nodes.append(helper.make_node("Gemm", [cur, wq, const(f"fc{i}_bias", fc.bias.detach().numpy())], [y], name=f"fc{i}", transB=1))
        last = i == len(model.fcs) - 1
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"relu{i}_out"], name=f"relu{i}"))
            y = f"relu{i}_out"
        cur = quant(y, "logits" if last else f"act{i}_quant", model.act_scales[i], ACT_BITS, not last, False)
    graph = helper.make_graph(nodes, "qonnx_mlp_digits",
                              [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, DIMS[0]])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, DIMS[-1]])], inits)
    m = helper.make_model(graph, producer_name="hwgen-examples",
                          opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)])
    onnx.save(m, path)


def main():
    x_train, x_test, y_train, y_test = load_split()
    model = Mlp()
    xt, yt = train(model, model, x_train, y_train)
    xs = torch.from_numpy(x_test)
    with torch.no_grad():
        float_acc = (model(xs).argmax(1).numpy() == y_test).mean()
    # Quantization-aware fine-tuning: activation scales from the float model, weights re-quantized every step.
    model.calibrate(xt)
    model.train()
    train(model, lambda v: model(v, quant=True), x_train, y_train, steps=300, lr=3e-3)
    with torch.no_grad():
        qat_acc = (model(xs, quant=True).argmax(1).numpy() == y_test).mean()
    export(model, os.path.join(HERE, "model.onnx"))
    np.save(os.path.join(HERE, "test_x.npy"), x_test)
    np.save(os.path.join(HERE, "test_y.npy"), y_test)
    with open(os.path.join(HERE, "float_accuracy.txt"), "w") as f:
        f.write(f"float {float_acc:.4f}\nqat {qat_acc:.4f}\ntest_digits {len(y_test)}\n")
    print(f"float accuracy {float_acc:.4f}, QAT (QONNX semantics) accuracy {qat_acc:.4f}")


if __name__ == "__main__":
    main()
