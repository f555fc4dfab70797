#!/usr/bin/python3
"""A tiny vision transformer on scikit-learn's 8x8 digits. Each digit becomes 16 tokens of 2x2 pixels (row-major over
the 4x4 patch grid, each token's pixels row-major); patch embedding Linear(4, 32) plus a learned positional embedding
[16, 32]; two pre-LayerNorm encoder layers (x + attn(ln1(x)), x + ff(ln2(x))) with hand-written two-head attention
(d 32, dh 16, separate q/k/v projections, scores scaled by a Mul by 0.25, softmax, out-projection) and a GELU
feed-forward 32 -> 64 -> 32; a final LayerNorm, mean pooling over the tokens and a Linear(32, 10) head.

Trains it in float, exports it to ONNX at opset 17 (LayerNormalization; GELU as Div, Erf, Add, Mul, Mul; every
reshape with constant shapes, so no Shape/Gather/Concat/Unsqueeze) and checks the op types, then quantizes it
statically in QDQ form the way ONNX Runtime's QDQ quantizer lays a graph out: a QuantizeLinear/DequantizeLinear pair
after the input and after every activation (once per MatMul + bias Add, once per GELU, uint8 asymmetric from the min
and max over the training set; softmax at scale 1/256, zero point 0), a pair with the input's scale and zero point
after every Reshape and Transpose, and every MatMul/Gemm weight as an int8 symmetric per-output-channel initializer
behind a DequantizeLinear; biases, LayerNorm parameters and the positional embedding stay float. A small numpy
evaluator of the graph (checked against torch) calibrates the ranges and measures the fake-quantized accuracy.
Writes model.onnx, test_x.npy / test_y.npy (the held-back digits as [450, 16, 4] tokens) and float_accuracy.txt
next to this script.

Run with Debian's interpreter: /usr/bin/python3 examples/tiny_vit_digits/make_model.py
"""
import io
import math
import os
import sys
import time
from collections import Counter

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import helper, numpy_helper
from scipy.special import erf  # scipy comes with Debian's python3-sklearn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from digits_data import load_split  # noqa: E402
torch.manual_seed(0)
np.random.seed(0)

TOKENS, PIXELS, D, HEADS, DH, FF = 16, 4, 32, 2, 16, 64
# The op types the float export may hold (Constant and Identity may come and go with torch's constant folding).
FLOAT_OPS = {"MatMul", "Add", "Mul", "Div", "Reshape", "Transpose", "Softmax", "LayerNormalization", "Erf",
             "ReduceMean", "Gemm"}


def to_tokens(x):
    """[N, 64] row-major 8x8 digits -> [N, 16, 4]: 2x2 patches row-major over the 4x4 grid, pixels row-major."""
    return np.ascontiguousarray(x.reshape(-1, 4, 2, 4, 2).transpose(0, 1, 3, 2, 4).reshape(-1, TOKENS, PIXELS))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x):
        q = self.q(x).reshape(-1, TOKENS, HEADS, DH).transpose(1, 2)      # [B, 2, 16, 16]
        kt = self.k(x).reshape(-1, TOKENS, HEADS, DH).permute(0, 2, 3, 1)  # [B, 2, 16 (dh), 16 (tokens)]: k transposed
        v = self.v(x).reshape(-1, TOKENS, HEADS, DH).transpose(1, 2)      # [B, 2, 16, 16]
        p = torch.softmax((q @ kt) * (1 / 4.0), dim=-1)                   # 1 / sqrt(dh)
        return self.o((p @ v).transpose(1, 2).reshape(-1, TOKENS, D))


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(D), Attention()
        self.ln2, self.ff = nn.LayerNorm(D), nn.Sequential(nn.Linear(D, FF), nn.GELU(), nn.Linear(FF, D))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class TinyVit(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(PIXELS, D)
        self.pos = nn.Parameter(torch.randn(TOKENS, D) * 0.02)
        self.layers = nn.Sequential(EncoderLayer(), EncoderLayer())
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, 10)

    def forward(self, x):
        x = self.embed(x) + self.pos
        return self.head(self.ln(self.layers(x)).mean(dim=1))


def affine_uint8(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0 / 256)
    zp = int(np.clip(round(-lo / float(scale)), 0, 255))
    return scale, zp


# ---- A numpy evaluator for exactly the ops of the float and the QDQ graphs ----

def quantize(x, scale, zp, axis=1):
    """QuantizeLinear: round half to even, saturate to the zero point's type."""
    info = np.iinfo(zp.dtype)
    if scale.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    q = np.rint(x / scale) + zp.astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def dequantize(q, scale, zp, axis=1):
    if scale.ndim == 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)


def run_graph(graph, feeds, extra=None):
    """Evaluates an ONNX graph node by node in float32; returns every tensor by name. extra: more ops, {op type: f(inputs,
    attributes) -> output}, tried first."""
    env = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    env.update(feeds)
    for n in graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        x = [env[i] if i else None for i in n.input]
        op = n.op_type
        if extra and op in extra:
            y = extra[op](x, a)
        elif op == "Constant":
            y = numpy_helper.to_array(a["value"])
        elif op == "Identity":
            y = x[0]
        elif op == "MatMul":
            y = np.matmul(x[0], x[1])
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Mul":
            y = x[0] * x[1]
        elif op == "Div":
            y = x[0] / x[1]
        elif op == "Erf":
            y = erf(x[0].astype(np.float64)).astype(np.float32)
        elif op == "Reshape":
            assert not a.get("allowzero", 0)
            shape = [d if d != 0 else x[0].shape[i] for i, d in enumerate(x[1].tolist())]
            y = x[0].reshape(shape)
        elif op == "Transpose":
            y = x[0].transpose(a["perm"])
        elif op == "Softmax":
            e = np.exp(x[0] - x[0].max(axis=a.get("axis", -1), keepdims=True))
            y = e / e.sum(axis=a.get("axis", -1), keepdims=True)
        elif op == "LayerNormalization":
            axis = a.get("axis", -1)
            assert axis in (-1, x[0].ndim - 1) and len(n.output) == 1
            mean = x[0].mean(axis=-1, keepdims=True)
            var = ((x[0] - mean) ** 2).mean(axis=-1, keepdims=True)
            y = (x[0] - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5))) * x[1]
            if len(x) > 2 and x[2] is not None:
                y = y + x[2]
        elif op == "ReduceMean":
            y = x[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "Gemm":
            m0 = x[0].T if a.get("transA", 0) else x[0]
            m1 = x[1].T if a.get("transB", 0) else x[1]
            y = np.float32(a.get("alpha", 1.0)) * (m0 @ m1)
            if len(x) > 2 and x[2] is not None:
                y = y + np.float32(a.get("beta", 1.0)) * x[2]
        elif op == "QuantizeLinear":
            y = quantize(x[0], x[1], x[2], a.get("axis", 1))
        elif op == "DequantizeLinear":
            y = dequantize(x[0], x[1], x[2], a.get("axis", 1))
        else:
            raise ValueError(f"the numpy evaluator has no {op} (node {n.name})")
        if y.dtype == np.float64:
            y = y.astype(np.float32)
        env[n.output[0]] = y
    return env


# ---- The QDQ rewrite ----

def gelu_chains(graph):
    """torch's exact GELU: Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5). Returns the inner tensors (not
    quantized) and the chains' final outputs."""
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in graph.node for o in n.output}
    inner, finals = set(), set()
    for n in graph.node:
        if n.op_type != "Erf":
            continue
        div = producer[n.input[0]]
        add = consumers[n.output[0]]
        assert div.op_type == "Div" and len(add) == 1 and add[0].op_type == "Add"
        mul1 = consumers[add[0].output[0]]
        assert len(mul1) == 1 and mul1[0].op_type == "Mul" and div.input[0] in mul1[0].input
        mul2 = consumers[mul1[0].output[0]]
        assert len(mul2) == 1 and mul2[0].op_type == "Mul"
        inner |= {div.output[0], n.output[0], add[0].output[0], mul1[0].output[0]}
        finals.add(mul2[0].output[0])
    return inner, finals


def quantized_tensors(graph, inner=None, consts=None, layout=("Reshape", "Transpose")):
    """Which tensors get a Q -> DQ pair, in graph order: ("calib", name) for an activation quantized from its
    calibrated range, ("softmax", name) at 1/256, ("same", name, input) for the output of a layout op. inner: tensors
    that get none (default: inside GELU chains); consts: the constant tensors (default: initializers and Constants)."""
    if consts is None:
        consts = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    if inner is None:
        inner, _ = gelu_chains(graph)
    plan = [("calib", graph.input[0].name)]
    for n in graph.node:
        out = n.output[0]
        if n.op_type in ("Constant", "Identity") or out in inner:
            continue
        if n.op_type == "MatMul":
            c = consumers.get(out, [])
            if len(c) == 1 and c[0].op_type == "Add" and any(i in consts for i in c[0].input):
                continue  # quantized once, after its bias Add
        if n.op_type in layout:
            plan.append(("same", out, n.input[0]))
        elif n.op_type == "Softmax":
            plan.append(("softmax", out))
        else:
            plan.append(("calib", out))
    return plan


def to_qdq(model, ranges, out_name, plan=None):
    """The QDQ rewrite; plan (default: quantized_tensors) says which tensors get a pair."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_inits, head, body = [], [], []

    def tag_of(name):
        return name.strip("/").replace("/", "_").replace(".", "_").replace(":", "_")

    # Per quantized tensor, the names of its scale and zero point initializers; a Reshape or Transpose output shares
    # its input's (the same scale and zero point, as ORT's quantizer gives layout ops).
    params = {}
    for entry in plan if plan is not None else quantized_tensors(g):
        if entry[0] == "same":
            params[entry[1]] = params[entry[2]]
            continue
        scale, zp = affine_uint8(*ranges[entry[1]]) if entry[0] == "calib" else (np.float32(1 / 256), 0)
        tag = tag_of(entry[1])
        params[entry[1]] = (f"{tag}_scale", f"{tag}_zero_point")
        new_inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{tag}_scale"))
        new_inits.append(numpy_helper.from_array(np.array(zp, dtype=np.uint8), f"{tag}_zero_point"))

    def qdq(tensor, nodes):
        s, z = params[tensor]
        tag = tag_of(tensor)
        dq = out_name if tensor == g.output[0].name else f"{tag}_dq"
        nodes.append(helper.make_node("QuantizeLinear", [tensor, s, z], [f"{tag}_q"], name=f"{tag}_quant"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", s, z], [dq], name=f"{tag}_dequant"))
        return dq

    def weight_dq(wname, node, axis):
        """int8 symmetric per output channel: MatMul weights [in, out] per column (axis 1), Gemm's [out, in] per row.
        Named after the node (torch calls a transposed Linear weight onnx::MatMul_<n>)."""
        w = numpy_helper.to_array(inits[wname])
        red = 0 if axis == 1 else 1
        ws = (np.maximum(np.abs(w).max(axis=red), 1e-8) / 127.0).astype(np.float32)
        wq = np.clip(np.rint(w / np.expand_dims(ws, red)), -127, 127).astype(np.int8)
        tag = tag_of(node.name) + "_weight"
        new_inits.append(numpy_helper.from_array(wq, tag + "_quantized"))
        new_inits.append(numpy_helper.from_array(ws, tag + "_scale"))
        new_inits.append(numpy_helper.from_array(np.zeros(ws.shape, dtype=np.int8), tag + "_zero_point"))
        head.append(helper.make_node("DequantizeLinear", [tag + "_quantized", tag + "_scale", tag + "_zero_point"],
                                     [tag + "_dq"], name=tag + "_dequant", axis=axis))
        g.initializer.remove(inits[wname])
        return tag + "_dq"

    renamed = {g.input[0].name: qdq(g.input[0].name, head)}
    for node in g.node:
        node.input[:] = [renamed.get(i, i) for i in node.input]
        if node.op_type == "MatMul" and node.input[1] in inits:
            node.input[1] = weight_dq(node.input[1], node, axis=1)
        elif node.op_type == "Gemm":
            assert node.input[1] in inits and helper.get_attribute_value(
                next(x for x in node.attribute if x.name == "transB")) == 1
            node.input[1] = weight_dq(node.input[1], node, axis=0)
        body.append(node)
        if node.output[0] in params:
            renamed[node.output[0]] = qdq(node.output[0], body)
    del g.node[:]
    g.node.extend(head + body)
    g.initializer.extend(new_inits)
    del g.value_info[:]
    g.output[0].name = out_name
    return model


def train(model, xt, yt, epochs=35, lr=3e-3, warmup=100, seed=0):
    """Float training: Adam (L2 1e-4) on minibatches of 32 for 35 epochs (1505 steps), cross entropy with label
    smoothing 0.1, the learning rate (3e-3) warming up over 100 steps and then falling along a cosine, batches shuffled
    by a generator seeded 0 (make_sparse.py fine-tunes with other epochs, rate, warm-up and seed). Leaves the model in
    eval mode; returns the seconds it took."""
    batch = 32
    steps = epochs * ((len(xt) + batch - 1) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (min(1.0, (s + 1) / warmup) if warmup else 1.0) * 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx], label_smoothing=0.1).backward()
            opt.step()
            sched.step()
    model.eval()
    return time.time() - t0


def main():
    x_train, x_test, y_train, y_test = load_split()
    x_train, x_test = to_tokens(x_train), to_tokens(x_test)
    model = TinyVit()
    print(f"{sum(p.numel() for p in model.parameters())} parameters")

    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    train_s = train(model, xt, yt)
    with torch.no_grad():
        float_logits = model(torch.from_numpy(x_test)).numpy()
        train_acc = (model(xt).argmax(1).numpy() == y_train).mean()
    float_acc = (float_logits.argmax(1) == y_test).mean()
    print(f"trained in {train_s:.1f} s: train accuracy {train_acc:.4f}, float test accuracy {float_acc:.4f}")

    # Export; the batch dimension stays symbolic.
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, TOKENS, PIXELS), buf, opset_version=17, input_names=["x"],
                      output_names=["logits_float"], dynamic_axes={"x": {0: "batch"}, "logits_float": {0: "batch"}})
    fmodel = onnx.load_from_string(buf.getvalue())
    ops = Counter(n.op_type for n in fmodel.graph.node)
    print("float export:", dict(sorted(ops.items())))
    assert set(ops) - {"Constant", "Identity"} == FLOAT_OPS, f"unexpected op types in the export: {sorted(ops)}"

    # The numpy evaluator must agree with torch before it calibrates anything.
    env = run_graph(fmodel.graph, {"x": x_test})
    diff = float(np.abs(env["logits_float"] - float_logits).max())
    print(f"numpy evaluator vs torch on the test digits: max |diff| {diff:.2e}")
    assert diff < 1e-4, diff

    # Calibration: the min and max of every tensor over the training set.
    env = run_graph(fmodel.graph, {"x": x_train})
    ranges = {k: (float(v.min()), float(v.max())) for k, v in env.items() if v.dtype == np.float32}

    qmodel = to_qdq(fmodel, ranges, "logits")
    onnx.checker.check_model(qmodel, full_check=True)
    qops = Counter(n.op_type for n in qmodel.graph.node)
    print("QDQ model:", dict(sorted(qops.items())))
    qdq_logits = run_graph(qmodel.graph, {"x": x_test})["logits"]
    qdq_acc = (qdq_logits.argmax(1) == y_test).mean()
    print(f"fake-quantized (numpy) test accuracy {qdq_acc:.4f}; {(qdq_logits.argmax(1) != float_logits.argmax(1)).sum()} "
          f"predictions differ from float, max |logit diff| {np.abs(qdq_logits - float_logits).max():.3f}")

    path = os.path.join(HERE, "model.onnx")
    onnx.save(qmodel, path)
    np.save(os.path.join(HERE, "test_x.npy"), x_test.astype(np.float32))
    np.save(os.path.join(HERE, "test_y.npy"), y_test.astype(np.int64))
    with open(os.path.join(HERE, "float_accuracy.txt"), "w") as f:
        f.write(f"float {float_acc:.4f}\nqdq_numpy {qdq_acc:.4f}\ntest_digits {len(y_test)}\n")
    print(f"float accuracy {float_acc:.4f}, QDQ (numpy) accuracy {qdq_acc:.4f} on {len(y_test)} held-back digits; "
          f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
