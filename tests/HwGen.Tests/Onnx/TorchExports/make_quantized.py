#!/usr/bin/python3
"""A small MLP (Linear 16-12, ReLU, Linear 12-6) quantized by torch's own eager-mode tools and exported by Debian's torch 1.13 at
opset 13 with a symbolic batch, as a user of torch.ao.quantization would (untrained, seeded weights; ranges observed on 20 random batches):

- qat_fbgemm_op13.onnx: prepare_qat with the fbgemm qconfig (FakeQuantize, version 0), exported with its fake quantizers: each is
  QuantizeLinear, Clip(q, , 127) (fbgemm's reduced activation range 0..127), DequantizeLinear; weights as float initializers
  behind QuantizeLinear/DequantizeLinear per channel (axis 0); the unfused ReLU between a DequantizeLinear and the next Gemm.
- qat_qnnpack_op13.onnx: the same with the qnnpack qconfig: full uint8 range (no Clip), per-tensor weights.
- converted_qnnpack_op13.onnx: prepare, calibrate, convert (quantized::linear), exported: int8 weight and int32 bias constants
  behind DequantizeLinear, no-op Casts between QuantizeLinear and DequantizeLinear, ReLU between a pair of equal parameters.

Run with Debian's interpreter: /usr/bin/python3 tests/HwGen.Tests/Onnx/TorchExports/make_quantized.py
"""
import os

import torch
import torch.ao.quantization as tq
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = tq.QuantStub()
        self.fc1 = nn.Linear(16, 12)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(12, 6)
        self.dq = tq.DeQuantStub()

    def forward(self, x):
        return self.dq(self.fc2(self.relu(self.fc1(self.q(x)))))


def build(mode, backend):
    torch.manual_seed(0)
    m = Mlp()
    if mode == "qat":
        m.train()
        m.qconfig = tq.get_default_qat_qconfig(backend, version=0)
        tq.prepare_qat(m, inplace=True)
        for _ in range(20):
            m(torch.randn(8, 16))
        m.eval()
        m.apply(tq.disable_observer)
    else:
        torch.backends.quantized.engine = backend
        m.eval()
        m.qconfig = tq.get_default_qconfig(backend)
        tq.prepare(m, inplace=True)
        for _ in range(20):
            m(torch.randn(8, 16))
        tq.convert(m, inplace=True)
    return m


for mode, backend in [("qat", "fbgemm"), ("qat", "qnnpack"), ("converted", "qnnpack")]:
    torch.onnx.export(build(mode, backend), torch.randn(2, 16), os.path.join(HERE, f"{mode}_{backend}_op13.onnx"), opset_version=13,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
