#!/usr/bin/python3
"""torch's own transformer layers on scikit-learn's 8x8 digits, as torch exports them. Each digit becomes 16 tokens of
2x2 pixels (as in tiny_vit_digits); patch embedding Linear(4, 32); a learned class token [1, 1, 32] concatenated in
front of the patch tokens (torch.cat of the expanded token); a learned positional embedding [17, 32]; two
nn.TransformerEncoderLayer(32, 2 heads, FF 64, ReLU, norm_first=True, batch_first=True) in an nn.TransformerEncoder;
a final LayerNorm; the head Linear(32, 10) reads token 0 (x[:, 0], a Gather).

Trains it in float, exports it twice with the batch dimension symbolic (so torch writes its Shape/Gather/Unsqueeze/
Concat shape arithmetic, the packed in_proj_weight split by Slice, the batch-first Transposes of nn.MultiheadAttention
and q's 1/sqrt(dh) as a Div): at opset 17 (LayerNormalization) and at opset 13 (LayerNorm written out as ReduceMean,
Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add). Quantizes both statically to QDQ as tiny_vit_digits/make_model.py does
(its helpers): a QuantizeLinear/DequantizeLinear pair after the input and after every activation (once per MatMul +
bias Add, once per LayerNorm, uint8 asymmetric from the min and max over the training set; softmax at 1/256), a pair
with the input's parameters after every Reshape, Transpose, Slice and Gather of an activation, int8 symmetric
per-output-channel weights behind a DequantizeLinear; biases, LayerNorm parameters, the class token and the positional
embedding stay float. Shape arithmetic (integer tensors) is left as torch wrote it.

Writes model_op17.onnx, model_op13.onnx, test_x.npy / test_y.npy and float_accuracy.txt next to this script.

Run with Debian's interpreter: /usr/bin/python3 examples/torch_encoder_digits/make_model.py
"""
import importlib.util
import io
import os
import sys
from collections import Counter

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from digits_data import load_split  # noqa: E402

_spec = importlib.util.spec_from_file_location("tiny_vit", os.path.join(os.path.dirname(HERE), "tiny_vit_digits", "make_model.py"))
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)  # the tokens, the uint8 range rule, QuantizeLinear/DequantizeLinear in numpy

torch.manual_seed(0)
np.random.seed(0)

TOKENS, PIXELS, D, HEADS, FF = 16, 4, 32, 2, 64


class TorchEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(PIXELS, D)
        self.cls = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.pos = nn.Parameter(torch.randn(TOKENS + 1, D) * 0.02)
        layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, 10)

    def forward(self, x):
        x = self.embed(x)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.ln(self.encoder(x))[:, 0])


# ---- A numpy evaluator for the float and QDQ graphs (shape arithmetic included) ----

def _slice(x, a):
    idx = [slice(None)] * x[0].ndim
    for s, e, ax in zip(x[1].tolist(), x[2].tolist(), x[3].tolist()):
        idx[ax] = slice(s, e)
    return x[0][tuple(idx)]


# The ops torch's export adds to tiny_vit_digits' numpy evaluator: shape arithmetic (integer Div floors), the in_proj
# Slice, the class token's Expand/Concat and Gather, ReLU and the written-out LayerNorm's Sub, Pow and Sqrt.
EXTRA_OPS = {
    "Cast": lambda x, a: x[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]),
    "Shape": lambda x, a: np.array(x[0].shape, dtype=np.int64),
    "Gather": lambda x, a: np.take(x[0], x[1], axis=a.get("axis", 0)),
    "Unsqueeze": lambda x, a: np.expand_dims(x[0], tuple(x[1].tolist())),
    "Concat": lambda x, a: np.concatenate(x, axis=a["axis"]),
    "Slice": _slice,
    "ConstantOfShape": lambda x, a: np.full(x[0].tolist(), numpy_helper.to_array(a["value"])[0]),
    "Equal": lambda x, a: x[0] == x[1],
    "Where": lambda x, a: np.where(x[0], x[1], x[2]),
    "Expand": lambda x, a: x[0] * np.ones(x[1].tolist(), dtype=x[0].dtype),
    "Div": lambda x, a: np.floor_divide(x[0], x[1]) if x[0].dtype.kind == "i" else x[0] / x[1],
    "Sub": lambda x, a: x[0] - x[1],
    "Pow": lambda x, a: np.power(x[0], x[1]),
    "Sqrt": lambda x, a: np.sqrt(x[0]),
    "Relu": lambda x, a: np.maximum(x[0], 0),
}


def run_graph(graph, feeds):
    return tiny.run_graph(graph, feeds, EXTRA_OPS)


# ---- The QDQ rewrite ----

LAYOUT_OPS = ("Reshape", "Transpose", "Slice", "Gather")


def quantized_tensors(graph, env):
    """tiny_vit_digits' plan, with Slice and Gather as layout ops, and no pair on integer tensors (shape arithmetic),
    on what is computed from constants only, and inside a written-out LayerNorm (all but the last node of a norm
    module)."""
    consts = {i.name for i in graph.initializer}
    for n in graph.node:
        if all(i in consts for i in n.input if i):
            consts.update(n.output)
    scope = lambda n: n.name.rsplit("/", 1)[0]  # noqa: E731
    norm_last = {}
    for n in graph.node:
        if scope(n).split("/")[-1].startswith("norm") or scope(n) == "/ln":
            norm_last[scope(n)] = n.output[0]
    inner = {o for n in graph.node for o in n.output
             if o in consts or env[o].dtype != np.float32 or n.op_type == "Shape" or norm_last.get(scope(n), o) != o}
    return tiny.quantized_tensors(graph, inner, consts, LAYOUT_OPS)


def to_qdq(model, env, ranges, out_name):
    """tiny_vit_digits' rewrite with this graph's plan."""
    return tiny.to_qdq(model, ranges, out_name, plan=quantized_tensors(model.graph, env))


def export(model, opset):
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, TOKENS, PIXELS), buf, opset_version=opset, input_names=["x"],
                      output_names=["logits_float"], dynamic_axes={"x": {0: "batch"}, "logits_float": {0: "batch"}})
    return onnx.load_from_string(buf.getvalue())


def main():
    x_train, x_test, y_train, y_test = load_split()
    x_train, x_test = tiny.to_tokens(x_train), tiny.to_tokens(x_test)
    model = TorchEncoder()
    print(f"{sum(p.numel() for p in model.parameters())} parameters")

    # Float training as tiny_vit_digits: Adam (L2 1e-4), minibatches of 32, 35 epochs, label smoothing 0.1, warm-up
    # then cosine.
    t = tiny.train(model, torch.from_numpy(x_train), torch.from_numpy(y_train))
    model.eval()
    with torch.no_grad():
        float_logits = model(torch.from_numpy(x_test)).numpy()
    float_acc = (float_logits.argmax(1) == y_test).mean()
    print(f"trained in {t:.1f} s: float test accuracy {float_acc:.4f}")

    lines = [f"float {float_acc:.4f}"]
    for opset in (17, 13):
        fmodel = export(model, opset)
        print(f"opset {opset} float export:", dict(sorted(Counter(n.op_type for n in fmodel.graph.node).items())))
        env = run_graph(fmodel.graph, {"x": x_test})
        diff = float(np.abs(env["logits_float"] - float_logits).max())
        assert diff < 1e-4, f"numpy evaluator vs torch: {diff}"
        env = run_graph(fmodel.graph, {"x": x_train})
        ranges = {k: (float(v.min()), float(v.max())) for k, v in env.items() if v.dtype == np.float32 and v.size}
        qmodel = to_qdq(fmodel, env, ranges, "logits")
        onnx.checker.check_model(qmodel, full_check=True)
        q_logits = run_graph(qmodel.graph, {"x": x_test})["logits"]
        q_acc = (q_logits.argmax(1) == y_test).mean()
        print(f"opset {opset} QDQ (numpy) accuracy {q_acc:.4f}; {(q_logits.argmax(1) != float_logits.argmax(1)).sum()} "
              f"predictions differ from float")
        path = os.path.join(HERE, f"model_op{opset}.onnx")
        onnx.save(qmodel, path)
        lines.append(f"qdq_numpy_op{opset} {q_acc:.4f}")
    np.save(os.path.join(HERE, "test_x.npy"), x_test.astype(np.float32))
    np.save(os.path.join(HERE, "test_y.npy"), y_test.astype(np.int64))
    with open(os.path.join(HERE, "float_accuracy.txt"), "w") as f:
        f.write("\n".join(lines + [f"test_digits {len(y_test)}"]) + "\n")


if __name__ == "__main__":
    main()
