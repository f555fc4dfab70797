#!/usr/bin/python3
"""Train a small MLP on scikit-learn's 8x8 digits with BitNet b1.58-style quantization-aware training and write it
twice, with the onnx helper (no onnxruntime, no Brevitas):

- model_qdq.onnx: QDQ. Each layer's ternary weights are integer codes (-1, 0, 1) in an int8 initializer behind a
  DequantizeLinear with the layer's scale; activations go through QuantizeLinear/DequantizeLinear pairs (int8,
  zero point 0); float biases in the Gemm.
- model_qonnx.onnx: QONNX as Brevitas would export it: float weights, each behind a Quant node of bit width 2,
  signed, narrow (= {-1, 0, 1}), and 8-bit signed Quant nodes on the input, after each ReLU and on the logits.

Quantization (BitNet b1.58): per tensor, the weight scale is s = mean|W| and the codes are clamp(round(W / s), -1, 1);
activations are int8 absmax: scale max|x| / 127, codes clamp(round(x / scale), -128, 127); round half to even
(torch.round, ONNX QuantizeLinear and QONNX's ROUND agree). The gradient passes the rounding unchanged (straight-through
estimator). The activation scales are per tensor and static: during training they are the batch's absmax, and the
batch is the whole training set, so the exported scales are the ones the model was trained with.

Writes both models, test_x.npy / test_y.npy (the held-back digits) and float_accuracy.txt next to this script.
Run with Debian's interpreter: /usr/bin/python3 examples/ternary_mlp_digits/make_model.py
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
from digits_data import load_split, save_test_split, train  # noqa: E402
torch.manual_seed(0)
np.random.seed(0)

DOMAIN = "qonnx.custom_op.general"
DIMS = [64, 128, 64, 10]
ACT_MAX = 127  # absmax maps to this code; codes clamp to [-128, 127]


def ste(x, q):
    """q forward, the identity's gradient backward."""
    return x + (q - x).detach()


def weight_scale(w):
    """BitNet b1.58 absmean: one scale per tensor."""
    return w.detach().abs().mean().clamp(min=1e-5)


def ternary_codes(w):
    return torch.clamp(torch.round(w / weight_scale(w)), -1, 1)


def act_scale(x):
    """Absmax, per tensor."""
    return x.detach().abs().max().clamp(min=1e-5) / ACT_MAX


def fake_quant_act(x, scale):
    return ste(x, torch.clamp(torch.round(x / scale), -128, 127) * scale)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(DIMS[i], DIMS[i + 1]) for i in range(len(DIMS) - 1))
        # Activation scales (input, after each hidden ReLU, logits): set from the batch while training, then frozen.
        self.scales = None

    def forward(self, x, quant=False):
        if not quant:
            for i, fc in enumerate(self.fcs):
                x = fc(x)
                if i < len(self.fcs) - 1:
                    x = torch.relu(x)
            return x
        learn = self.training
        scales = [] if learn else self.scales
        def fq(v, i):
            if learn:
                scales.append(act_scale(v))
            return fake_quant_act(v, scales[i])
        x = fq(x, 0)
        for i, fc in enumerate(self.fcs):
            w = ste(fc.weight, ternary_codes(fc.weight) * weight_scale(fc.weight))
            x = nn.functional.linear(x, w, fc.bias)
            if i < len(self.fcs) - 1:
                x = torch.relu(x)
            x = fq(x, i + 1)
        if learn:
            self.scales = scales
        return x


def f32(a):
    return np.asarray(a, dtype=np.float32)


class Writer:
    """Initializers and nodes of one graph."""

    def __init__(self):
        self.inits, self.nodes = [], []

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op, ins, out, **attrs):
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def save(self, path, name, opsets):
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, DIMS[0]])],
                                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, DIMS[-1]])], self.inits)
        model = helper.make_model(graph, producer_name="hwgen-examples", opset_imports=opsets)
        onnx.checker.check_model(model)
        onnx.save(model, path)


def export(model, path, qonnx):
    """The trained model as QDQ (qonnx False) or QONNX (qonnx True); both compute what forward(quant=True) does."""
    g = Writer()
    zero8 = np.array(0, dtype=np.int8)

    def quant_act(x, name, scale, out=None):
        out = out or name
        s = f32(float(scale))
        if qonnx:
            return g.node("Quant", [x, g.const(name + "_scale", s), g.const(name + "_zeropt", f32(0)),
                                    g.const(name + "_bitwidth", f32(8))], out,
                          domain=DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")
        q = g.node("QuantizeLinear", [x, g.const(name + "_scale", s), g.const(name + "_zp", zero8)], name + "_q")
        return g.node("DequantizeLinear", [q, name + "_scale", name + "_zp"], out)

    cur = quant_act("pixels", "input_quant", model.scales[0])
    for i, fc in enumerate(model.fcs):
        w = fc.weight.detach()
        s = f32(float(weight_scale(w)))
        if qonnx:
            # QONNX rounds W / scale in its own precision: the codes must not depend on it.
            w64 = np.clip(np.round(w.numpy().astype(np.float64) / np.float64(s)), -1, 1)
            assert (w64 == ternary_codes(w).numpy()).all(), f"fc{i}: a weight lies on a rounding boundary"
            wq = g.node("Quant", [g.const(f"fc{i}_weight", f32(w.numpy())), g.const(f"fc{i}_weight_scale", s),
                                  g.const(f"fc{i}_weight_zeropt", f32(0)), g.const(f"fc{i}_weight_bitwidth", f32(2))],
                        f"fc{i}_weight_quant", domain=DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
        else:
            codes = ternary_codes(w).numpy().astype(np.int8)
            wq = g.node("DequantizeLinear", [g.const(f"fc{i}_weight_codes", codes), g.const(f"fc{i}_weight_scale", s),
                                             g.const(f"fc{i}_weight_zp", zero8)], f"fc{i}_weight")
        y = g.node("Gemm", [cur, wq, g.const(f"fc{i}_bias", f32(fc.bias.detach().numpy()))], f"fc{i}", transB=1)
        last = i == len(model.fcs) - 1
        if not last:
            y = g.node("Relu", [y], f"relu{i}")
        cur = quant_act(y, "logits_quant" if last else f"act{i}_quant", model.scales[i + 1], "logits" if last else None)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(DOMAIN, 1)] if qonnx else [])
    g.save(path, "ternary_mlp_digits", opsets)


def main():
    x_train, x_test, y_train, y_test = load_split()
    model = Mlp()
    xt, yt = train(model, model, x_train, y_train)
    xs = torch.from_numpy(x_test)
    with torch.no_grad():
        float_acc = (model(xs).argmax(1).numpy() == y_test).mean()
    # Quantization-aware training from the float model: ternary weights and int8 activations in every step.
    model.train()
    train(model, lambda v: model(v, quant=True), x_train, y_train, steps=600, lr=3e-3)
    with torch.no_grad():
        model.train()
        model(xt, quant=True)  # the activation scales of the final weights
        model.eval()
        ternary_acc = (model(xs, quant=True).argmax(1).numpy() == y_test).mean()
        codes = [ternary_codes(fc.weight) for fc in model.fcs]
    zeros = sum(int((c == 0).sum()) for c in codes) / sum(c.numel() for c in codes)
    export(model, os.path.join(HERE, "model_qdq.onnx"), qonnx=False)
    export(model, os.path.join(HERE, "model_qonnx.onnx"), qonnx=True)
    save_test_split(HERE, x_test, y_test, {"float": float_acc, "ternary": ternary_acc, "zero_weights": zeros})
    print(f"float accuracy {float_acc:.4f}, ternary QAT (torch) accuracy {ternary_acc:.4f}, {zeros:.1%} of the weights 0")


if __name__ == "__main__":
    main()
