"""What the digits examples share: scikit-learn's 8x8 digits split the same way, and the same float training.
Used by mlp_digits/make_model.py and ffn_digits/make_model.py (run with Debian's /usr/bin/python3)."""
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
