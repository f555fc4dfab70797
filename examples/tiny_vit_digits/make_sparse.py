#!/usr/bin/python3
"""Sparse-attention variants of tiny_vit_digits, fine-tuned with their masks (issue 15). Retrains the dense model exactly
as make_model.py does (same seeds, same functions: the same float weights), then for three mask sets:

- top-k 50 %: per layer and head, each query row keeps the k = 8 of 16 key columns with the highest mean attention
  probability over the 1347 training digits (the dense model's softmax outputs, averaged);
- top-k 90 %: the same with k = 2 of 16, which is 87.5 % sparse (16 columns allow no 90 %; 2 is the nearest k);
- Λ: 2 sink columns plus a window |i - j| < 4 (not causal: a ViT attends both ways), the same for every layer and head;

fine-tunes a copy of the dense model briefly with the mask applied (the mask added to the scaled scores before the
softmax: 0 where kept, -10000 where masked), exports it at opset 17 with the mask as an additive constant [2, 16, 16]
(per head) before each Softmax, and quantizes it to QDQ with make_model.py's rewrite (the masked scores' Add gets no
QDQ pair: the importer takes Mul -> QDQ -> Add(mask) -> Softmax, the mask beside the quantized scores). Writes
model_sparse50.onnx, model_sparse90.onnx, model_lambda.onnx and sparse_accuracy.txt (float and fake-quantized accuracy
on the 450 held-back digits per variant) next to this script; never touches model.onnx.

Run with Debian's interpreter: /usr/bin/python3 examples/tiny_vit_digits/make_sparse.py
"""
import copy
import io
import os

import numpy as np
import onnx
import torch

import make_model as mm  # seeds torch and numpy at import, as make_model.py's own run does
from make_model import HEADS, TOKENS, DH, FLOAT_OPS

HERE = mm.HERE
MASKED = -10000.0  # the importer's rule: a mask constant holds 0 (kept) and values at or below -10^4 (masked)
FINE_TUNE_EPOCHS = 8  # Adam at lr 1e-3 falling along a cosine, no warm-up, batches shuffled by a generator seeded 1


def masked_forward(self, x):
    """Attention.forward with self.mask ([HEADS, TOKENS, TOKENS], 0 / -10000) added to the scaled scores."""
    q = self.q(x).reshape(-1, TOKENS, HEADS, DH).transpose(1, 2)
    kt = self.k(x).reshape(-1, TOKENS, HEADS, DH).permute(0, 2, 3, 1)
    v = self.v(x).reshape(-1, TOKENS, HEADS, DH).transpose(1, 2)
    p = torch.softmax((q @ kt) * (1 / 4.0) + self.mask, dim=-1)
    return self.o((p @ v).transpose(1, 2).reshape(-1, TOKENS, HEADS * DH))


def mean_maps(model, xt):
    """Per layer, the dense softmax probabilities averaged over the digits xt: [HEADS, TOKENS, TOKENS]."""
    maps = []
    with torch.no_grad():
        h = model.embed(xt) + model.pos
        for layer in model.layers:
            a, y = layer.attn, layer.ln1(h)
            q = a.q(y).reshape(-1, TOKENS, HEADS, DH).transpose(1, 2)
            kt = a.k(y).reshape(-1, TOKENS, HEADS, DH).permute(0, 2, 3, 1)
            maps.append(torch.softmax((q @ kt) * (1 / 4.0), dim=-1).mean(dim=0).numpy())
            h = layer(h)
    return maps


def top_k(m, k):
    """Keep flags: per head and query row the k columns of highest mean probability (ties to the lower column)."""
    keep = np.zeros(m.shape, dtype=bool)
    order = np.argsort(-m, axis=-1, kind="stable")[..., :k]
    np.put_along_axis(keep, order, True, axis=-1)
    return keep


def lambda_keep(sinks, window):
    i, j = np.meshgrid(np.arange(TOKENS), np.arange(TOKENS), indexing="ij")
    return np.broadcast_to((j < sinks) | (np.abs(i - j) < window), (HEADS, TOKENS, TOKENS)).copy()


def export_qdq(model, x_train, x_test):
    """Float export at opset 17, then make_model.py's QDQ rewrite, leaving the mask Adds (the inputs of the Softmaxes)
    without a pair. Returns the QDQ model and its fake-quantized logits on x_test."""
    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, TOKENS, mm.PIXELS), buf, opset_version=17, input_names=["x"],
                      output_names=["logits_float"], dynamic_axes={"x": {0: "batch"}, "logits_float": {0: "batch"}})
    fmodel = onnx.load_from_string(buf.getvalue())
    ops = {n.op_type for n in fmodel.graph.node} - {"Constant", "Identity"}
    assert ops == FLOAT_OPS, f"unexpected op types in the export: {sorted(ops)}"
    mask_adds = {n.input[0] for n in fmodel.graph.node if n.op_type == "Softmax"}
    assert len(mask_adds) == len(model.layers)
    env = mm.run_graph(fmodel.graph, {"x": x_train})
    ranges = {k: (float(v.min()), float(v.max())) for k, v in env.items() if v.dtype == np.float32}
    inner, _ = mm.gelu_chains(fmodel.graph)
    plan = mm.quantized_tensors(fmodel.graph, inner=inner | mask_adds)
    qmodel = mm.to_qdq(fmodel, ranges, "logits", plan)
    onnx.checker.check_model(qmodel, full_check=True)
    return qmodel, mm.run_graph(qmodel.graph, {"x": x_test})["logits"]


def main():
    x_train, x_test, y_train, y_test = mm.load_split()
    x_train, x_test = mm.to_tokens(x_train), mm.to_tokens(x_test)
    dense = mm.TinyVit()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    train_s = mm.train(dense, xt, yt)
    with torch.no_grad():
        dense_acc = (dense(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    print(f"dense model retrained in {train_s:.1f} s: float test accuracy {dense_acc:.4f}")
    maps = mean_maps(dense, xt)

    variants = [("sparse50", [top_k(m, 8) for m in maps]),
                ("sparse90", [top_k(m, 2) for m in maps]),
                ("lambda", [lambda_keep(2, 4)] * len(maps))]
    lines = [f"dense_float {dense_acc:.4f}"]
    for name, keeps in variants:
        torch.manual_seed(0)
        model = copy.deepcopy(dense)
        for layer, keep in zip(model.layers, keeps):
            a = layer.attn
            a.register_buffer("mask", torch.from_numpy(np.where(keep, 0.0, MASKED).astype(np.float32)))
            a.forward = masked_forward.__get__(a)
        with torch.no_grad():
            before = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        model.train()
        mm.train(model, xt, yt, epochs=FINE_TUNE_EPOCHS, lr=1e-3, warmup=0, seed=1)
        with torch.no_grad():
            float_acc = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
        qmodel, qlogits = export_qdq(model, x_train, x_test)
        qdq_acc = (qlogits.argmax(1) == y_test).mean()
        sparsity = 1 - np.mean([k.mean() for k in keeps])
        path = os.path.join(HERE, f"model_{name}.onnx")
        onnx.save(qmodel, path)
        print(f"{name}: sparsity {sparsity:.4f}, float accuracy {before:.4f} masked before fine-tuning, {float_acc:.4f} "
              f"after; QDQ (numpy) {qdq_acc:.4f}; wrote {path} ({os.path.getsize(path)} bytes)")
        lines += [f"{name}_sparsity {sparsity:.4f}", f"{name}_float_masked_untuned {before:.4f}",
                  f"{name}_float {float_acc:.4f}", f"{name}_qdq_numpy {qdq_acc:.4f}"]
    with open(os.path.join(HERE, "sparse_accuracy.txt"), "w") as f:
        f.write("\n".join(lines) + f"\ntest_digits {len(y_test)}\n")


if __name__ == "__main__":
    main()
