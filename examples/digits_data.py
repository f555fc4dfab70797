"""What the digits examples share: scikit-learn's 8x8 digits split the same way, and the same float training.
Used by the examples' make_model.py scripts (run with Debian's /usr/bin/python3)."""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load_split():
    """Pixels scaled from 0..16 to [0, 1]; 25 % held back (450 digits), fixed split."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=0)


def train(model, logits, x_train, y_train, steps=300, lr=1e-2):
    """Adam on the cross entropy of logits(x) (full batch); returns the training tensors."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(logits(xt), yt).backward()
        opt.step()
    model.eval()
    return xt, yt


def save_test_split(folder, x_test, y_test, accuracies):
    """Writes test_x.npy / test_y.npy (the held-back digits) and float_accuracy.txt (one "name value" line per accuracy,
    then the number of test digits) into folder."""
    np.save(os.path.join(folder, "test_x.npy"), x_test)
    np.save(os.path.join(folder, "test_y.npy"), y_test)
    with open(os.path.join(folder, "float_accuracy.txt"), "w") as f:
        f.write("".join(f"{name} {value:.4f}\n" for name, value in accuracies.items()) + f"test_digits {len(y_test)}\n")
