"""Baseline (b): the same models and Adam in PyTorch eager on the CPU (a bench-only dependency).

python bench/torch_baseline.py mnist_mlp --threads 2 --epochs 5   # JSON line per epoch
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import data


def mlp(sizes):
    layers = []
    for n_in, n_out in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def build(workload: str, seed: int = 0):
    torch.manual_seed(seed)
    return {
        "digits_mlp": lambda: mlp([64, 256, 256, 10]),
        "mnist_mlp": lambda: mlp([784, 256, 256, 10]),
        "mnist_cnn": cnn,
    }[workload]()


def tensors(workload: str):
    if workload == "digits_mlp":
        x, y = data.digits()
        return torch.from_numpy(x), torch.from_numpy(y).long(), None, None
    x, y, xt, yt = data.mnist(flat=workload == "mnist_mlp")
    if workload == "mnist_cnn":  # NHWC -> NCHW
        x, xt = x.transpose(0, 3, 1, 2).copy(), xt.transpose(0, 3, 1, 2).copy()
    return (
        torch.from_numpy(x),
        torch.from_numpy(y).long(),
        torch.from_numpy(xt),
        torch.from_numpy(yt).long(),
    )


def train_epoch(model, opt, x, y, batch_size, generator, max_steps=None):
    order = torch.randperm(len(y), generator=generator)
    steps = len(y) // batch_size if max_steps is None else max_steps
    loss_fn = nn.CrossEntropyLoss()
    for i in range(steps):
        rows = order[i * batch_size : (i + 1) * batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[rows]), y[rows])
        loss.backward()
        opt.step()
    return steps


def steps_per_s(workload: str, threads: int, batch_size: int = 128, steps: int = 200) -> float:
    """Steady-state steps/s after a warm-up (for in-process use by bench/run.py)."""
    torch.set_num_threads(threads)
    model = build(workload)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, _, _ = tensors(workload)
    generator = torch.Generator().manual_seed(0)
    train_epoch(model, opt, x, y, batch_size, generator, max_steps=5)
    start = time.perf_counter()
    done = 0
    while done < steps:
        done += train_epoch(
            model,
            opt,
            x,
            y,
            batch_size,
            generator,
            max_steps=min(len(y) // batch_size, steps - done),
        )
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mnist_mlp", "mnist_cnn"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.workload, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y, xt, yt = tensors(args.workload)
    generator = torch.Generator().manual_seed(args.seed)
    for e in range(args.epochs):
        model.train()
        train_epoch(model, opt, x, y, args.batch_size, generator)
        model.eval()
        with torch.no_grad():
            acc = float(
                np.mean(
                    [
                        (model(xt[i : i + 2000]).argmax(1) == yt[i : i + 2000])
                        .float()
                        .mean()
                        .item()
                        for i in range(0, len(yt), 2000)
                    ]
                )
            )
        print(json.dumps({"epoch": e + 1, "test_accuracy": acc, "unix": time.time()}), flush=True)


if __name__ == "__main__":
    main()
