#!/usr/bin/python3
"""A transformer-style feed-forward block on scikit-learn's 8x8 digits: Linear(64, 48), GELU, Linear(48, 32),
LayerNorm(32), Linear(32, 10), softmax. Trains it in float, exports it to ONNX at opset 13 (torch writes GELU as
x * (1 + erf(x / sqrt 2)) * 0.5 and LayerNorm as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add),
then quantizes it statically in QDQ form: every activation between the ops gets a QuantizeLinear/DequantizeLinear
pair (uint8, asymmetric, from the min and max over the training set; softmax at scale 1/256), every weight an int8
per-output-channel initializer behind a DequantizeLinear; biases and LayerNorm parameters stay float.
Writes model.onnx, test_x.npy / test_y.npy (the held-back digits) and float_accuracy.txt next to this script.

Run with Debian's interpreter: /usr/bin/python3 examples/ffn_digits/make_model.py
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


class Ffn(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(48, 32)
        self.ln = nn.LayerNorm(32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        return torch.softmax(self.fc3(self.ln(self.fc2(self.act(self.fc1(x))))), dim=-1)


def affine_uint8(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0 / 256)
    zp = int(np.clip(round(-lo / float(scale)), 0, 255))
    return scale, zp


def main():
    x_train, x_test, y_train, y_test = load_split()
    model = Ffn()
    xt, yt = train(model, lambda x: model.fc3(model.ln(model.fc2(model.act(model.fc1(x))))), x_train, y_train)
    with torch.no_grad():
        float_acc = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()

    # Calibration: the range of every activation the QDQ form quantizes, over the training set.
    ranges = {"x": (float(xt.min()), float(xt.max()))}
    with torch.no_grad():
        h1 = model.fc1(xt); g = model.act(h1); h2 = model.fc2(g); n = model.ln(h2); h3 = model.fc3(n)
    for name, t in [("/fc1/Gemm_output_0", h1), ("/act/Mul_1_output_0", g), ("/fc2/Gemm_output_0", h2),
                    ("/ln/Add_1_output_0", n), ("/fc3/Gemm_output_0", h3)]:
        ranges[name] = (float(t.min()), float(t.max()))

    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(model, torch.zeros(1, 64), path, opset_version=13, input_names=["x"], output_names=["probs_float"])
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, new_inits = [], []

    def qdq(tensor, scale, zp, tag):
        """Q and DQ of tensor; returns the dequantized name."""
        s, z = f"{tag}_scale", f"{tag}_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), s))
        new_inits.append(numpy_helper.from_array(np.array(zp, dtype=np.uint8), z))
        new_nodes.append(helper.make_node("QuantizeLinear", [tensor, s, z], [f"{tag}_q"], name=f"{tag}_quant"))
        new_nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", s, z], [f"{tag}_dq"], name=f"{tag}_dequant"))
        return f"{tag}_dq"

    def tag_of(name):
        return name.strip("/").replace("/", "_").replace(".", "_")

    # The input first, then each calibrated activation right after the node that makes it.
    renamed = {"x": qdq("x", *affine_uint8(*ranges["x"]), "x")}
    out_nodes = list(new_nodes)
    new_nodes.clear()
    for node in list(g.node):
        node.input[:] = [renamed.get(i, i) for i in node.input]
        if node.op_type == "Gemm":
            wname = node.input[1]
            w = numpy_helper.to_array(inits[wname])  # [out, in] with transB = 1
            ws = np.maximum(np.abs(w).max(axis=1), 1e-8) / 127.0
            wq = np.clip(np.round(w / ws[:, None]), -127, 127).astype(np.int8)
            new_inits.append(numpy_helper.from_array(wq, wname + "_quantized"))
            new_inits.append(numpy_helper.from_array(ws.astype(np.float32), wname + "_scale"))
            new_inits.append(numpy_helper.from_array(np.zeros(ws.shape, dtype=np.int8), wname + "_zero_point"))
            out_nodes.append(helper.make_node("DequantizeLinear", [wname + "_quantized", wname + "_scale", wname + "_zero_point"],
                                              [wname + "_dq"], name=tag_of(wname) + "_dequant", axis=0))
            node.input[1] = wname + "_dq"
            g.initializer.remove(inits[wname])
        out_nodes.append(node)
        for o in node.output:
            if o in ranges:
                renamed[o] = qdq(o, *affine_uint8(*ranges[o]), tag_of(o))
                out_nodes.extend(new_nodes)
                new_nodes.clear()
    # The softmax output: probabilities at scale 1/256, then the graph output.
    probs = qdq("probs_float", np.float32(1 / 256), 0, "probs")
    out_nodes.extend(new_nodes)
    out_nodes.append(helper.make_node("Identity", [probs], ["probs"], name="probs_out"))
    del g.node[:]
    g.node.extend(out_nodes)
    g.initializer.extend(new_inits)
    g.output[0].name = "probs"
    onnx.checker.check_model(m)
    onnx.save(m, path)

    np.save(os.path.join(HERE, "test_x.npy"), x_test)
    np.save(os.path.join(HERE, "test_y.npy"), y_test)
    with open(os.path.join(HERE, "float_accuracy.txt"), "w") as f:
        f.write(f"float {float_acc:.4f}\ntest_digits {len(y_test)}\n")
    print(f"float accuracy {float_acc:.4f} on {len(y_test)} held-back digits; wrote {path}")


if __name__ == "__main__":
    main()
