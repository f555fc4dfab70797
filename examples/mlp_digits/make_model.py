#!/usr/bin/python3
"""Train a small MLP on scikit-learn's 8x8 digits, post-training quantize it statically with
torch's eager-mode quantization (int8 per-channel weights, uint8 per-tensor activations) and
export it to ONNX in QDQ form. Writes model.onnx, test_x.npy / test_y.npy (the held-back digits)
and float_accuracy.txt next to this script.

Run with Debian's interpreter: /usr/bin/python3 examples/mlp_digits/make_model.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torch.ao.quantization import (DeQuantStub, MinMaxObserver, PerChannelMinMaxObserver,
                                   QConfig, QuantStub, convert, prepare)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from digits_data import load_split, train  # noqa: E402
torch.manual_seed(0)
np.random.seed(0)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.fc1 = nn.Linear(64, 48)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(48, 24)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(24, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        x = self.fc3(x)
        return self.dequant(x)


def main():
    x_train, x_test, y_train, y_test = load_split()
    model = Mlp()
    xt, yt = train(model, model, x_train, y_train)
    with torch.no_grad():
        float_acc = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()

    # Static post-training quantization: observers calibrated on the training set.
    model.qconfig = QConfig(
        activation=MinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                  qscheme=torch.per_channel_symmetric))
    prepared = prepare(model)
    with torch.no_grad():
        prepared(xt)
    qmodel = convert(prepared)
    with torch.no_grad():
        torch_q_acc = (qmodel(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()

    torch.onnx.export(qmodel, torch.from_numpy(x_test[:1]), os.path.join(HERE, "model.onnx"),
                      opset_version=13, input_names=["pixels"], output_names=["logits"])
    np.save(os.path.join(HERE, "test_x.npy"), x_test)
    np.save(os.path.join(HERE, "test_y.npy"), y_test)
    with open(os.path.join(HERE, "float_accuracy.txt"), "w") as f:
        f.write(f"float {float_acc:.4f}\ntorch_int8 {torch_q_acc:.4f}\n"
                f"test_digits {len(y_test)}\n")
    print(f"float accuracy {float_acc:.4f}, torch int8 accuracy {torch_q_acc:.4f}")


if __name__ == "__main__":
    main()
