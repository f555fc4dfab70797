#!/usr/bin/python3
"""Small torch attention blocks as Debian's torch 1.13 exports them, quantized to QDQ by the torch_encoder_digits example's
rewrite (untrained, seeded weights; ranges calibrated on 64 random inputs): nn.MultiheadAttention (batch_first=True,
self-attention, need_weights=False) and nn.TransformerEncoderLayer (norm_first=True, batch_first=False: the
sequence-first [T, B, D] layout throughout), each at opset 13 and 17, with the batch dimension symbolic; and the
sequence-first layer with a fixed batch of 4 at opset 17 (layer_seqfirst_b4_op17.onnx, which HwGen refuses). T 8, D 16,
2 heads, FF 32. Writes <block>_op<opset>.onnx next to this script; TorchExportTests compiles them.

Run with Debian's interpreter: /usr/bin/python3 tests/HwGen.Tests/Onnx/TorchExports/make_models.py
"""
import importlib.util
import io
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
_spec = importlib.util.spec_from_file_location("encoder", os.path.join(ROOT, "examples", "torch_encoder_digits", "make_model.py"))
encoder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(encoder)

T, D, HEADS, FF = 8, 16, 2, 32


class Mha(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(D, HEADS, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class SeqFirstLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1, batch_first=False, norm_first=True)

    def forward(self, x):
        return self.layer(x)


def main():
    for name, make, shape, batch_axis, opsets in (("mha", Mha, (1, T, D), 0, (13, 17)), ("layer_seqfirst", SeqFirstLayer, (T, 1, D), 1, (13, 17)),
                                                  ("layer_seqfirst_b4", SeqFirstLayer, (T, 4, D), None, (17,))):
        for opset in opsets:
            torch.manual_seed(0)
            model = make().eval()
            buf = io.BytesIO()
            torch.onnx.export(model, torch.zeros(shape), buf, opset_version=opset, input_names=["x"], output_names=["y_float"],
                              dynamic_axes=None if batch_axis is None else {"x": {batch_axis: "batch"}, "y_float": {batch_axis: "batch"}})
            fmodel = onnx.load_from_string(buf.getvalue())
            calib = np.random.default_rng(0).standard_normal((64 if batch_axis is not None else shape[1], T, D)).astype(np.float32)
            if batch_axis != 0:
                calib = np.ascontiguousarray(calib.transpose(1, 0, 2))
            with torch.no_grad():
                ref = model(torch.from_numpy(calib)).numpy()
            env = encoder.run_graph(fmodel.graph, {"x": calib})
            assert np.abs(env["y_float"] - ref).max() < 1e-4
            ranges = {k: (float(v.min()), float(v.max())) for k, v in env.items() if v.dtype == np.float32 and v.size}
            qmodel = encoder.to_qdq(fmodel, env, ranges, "y")
            onnx.checker.check_model(qmodel, full_check=True)
            onnx.save(qmodel, os.path.join(HERE, f"{name}_op{opset}.onnx"))
            print(name, opset, sorted({n.op_type for n in qmodel.graph.node}))


if __name__ == "__main__":
    main()
