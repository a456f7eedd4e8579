"""Baseline (a): a minimal hand-written JAX + optax training loop, the practical ceiling.

Pure functions, one ``lax.scan`` per epoch (or one jitted step per call for the CNN, see
``--loop``), donated buffers, batches from an on-device permutation, evaluation every epoch:
the loop a careful researcher writes by hand. Shares nothing with lrbench.

    python bench/handwritten.py mnist_mlp --epochs 5    # JSON line per epoch, then a summary
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).parent))
import itertools

import data


def init_mlp(key, sizes):
    params = []
    for k, (n_in, n_out) in zip(
        jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True
    ):
        w = jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(1.0 / n_in)
        params.append((w, jnp.zeros(n_out)))
    return params


def mlp(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def init_cnn(key, image_size=28, channels=(32, 64), dense=128, classes=10):
    keys = jax.random.split(key, len(channels) + 2)
    convs, c_in = [], 1
    for k, c_out in zip(keys, channels, strict=False):
        w = jax.random.normal(k, (3, 3, c_in, c_out)) * jnp.sqrt(1.0 / (9 * c_in))
        convs.append((w, jnp.zeros(c_out)))
        c_in = c_out
    flat = (image_size // 2 ** len(channels)) ** 2 * c_in
    return {"convs": convs, "dense": init_mlp(keys[-1], [flat, dense, classes])}


def cnn(params, x):
    for w, b in params["convs"]:
        x = jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        x = jax.nn.relu(x + b)
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return mlp(params["dense"], x.reshape(x.shape[0], -1))


def loss_fn(apply, params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y).mean()


def make_step(apply, tx):
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(apply, p, x, y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def make_epoch(tx, batch_size, steps, apply=mlp):
    """One jitted program per epoch: a lax.scan over the steps."""
    step = make_step(apply, tx)

    def epoch(params, opt_state, x, y, key):
        rows = jax.random.permutation(key, x.shape[0])[: steps * batch_size]

        def body(carry, r):
            params, opt_state = carry
            params, opt_state, loss = step(params, opt_state, x[r], y[r])
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(
            body, (params, opt_state), rows.reshape(steps, batch_size)
        )
        return params, opt_state, losses

    return jax.jit(epoch, donate_argnums=(0, 1))


def make_step_epoch(tx, batch_size, steps, apply=cnn):
    """Python loop over a jitted step (no host sync): faster than a rolled scan for convs on CPU."""
    step = jax.jit(make_step(apply, tx), donate_argnums=(0, 1))
    perm = jax.jit(
        lambda key, n: jax.random.permutation(key, n)[: steps * batch_size].reshape(
            steps, batch_size
        ),
        static_argnums=1,
    )

    def epoch(params, opt_state, x, y, key):
        rows = perm(key, x.shape[0])
        losses = []
        for i in range(steps):
            params, opt_state, loss = step(params, opt_state, x[rows[i]], y[rows[i]])
            losses.append(loss)
        return params, opt_state, jnp.stack(losses)

    return epoch


def accuracy(apply, params, x, y, batch=2000):
    hits = 0
    predict = jax.jit(lambda p, xb: jnp.argmax(apply(p, xb), -1))
    for i in range(0, len(y), batch):
        hits += int((predict(params, x[i : i + batch]) == y[i : i + batch]).sum())
    return hits / len(y)


WORKLOADS = {
    "digits_mlp": dict(data=data.digits, sizes=[64, 256, 256, 10], apply=mlp),
    "mnist_mlp": dict(data=lambda: data.mnist()[:2], sizes=[784, 256, 256, 10], apply=mlp),
    "mnist_cnn": dict(data=lambda: data.mnist(flat=False)[:2], sizes=None, apply=cnn),
}


def setup(workload: str, batch_size: int, loop: str, seed: int = 0):
    spec = WORKLOADS[workload]
    key = jax.random.key(seed)
    params = init_cnn(key) if spec["apply"] is cnn else init_mlp(key, spec["sizes"])
    tx = optax.adam(1e-3)
    make = make_epoch if loop == "scan" else make_step_epoch
    return params, tx, tx.init(params), spec["apply"], make


def main() -> None:
    """Train with evaluation on the MNIST test set after every epoch; print times from START."""
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["mnist_mlp", "mnist_cnn"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--loop", choices=["scan", "step"], default="scan")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x, y, x_test, y_test = data.mnist(flat=args.workload == "mnist_mlp")
    params, tx, opt_state, apply, make = setup(args.workload, args.batch_size, args.loop, args.seed)
    steps = len(y) // args.batch_size
    epoch = make(tx, args.batch_size, steps, apply=apply)
    x, y, x_test, y_test = map(jnp.asarray, (x, y, x_test, y_test))
    for e in range(args.epochs):
        params, opt_state, _ = epoch(params, opt_state, x, y, jax.random.key(1000 * args.seed + e))
        acc = accuracy(apply, params, x_test, y_test)
        print(json.dumps({"epoch": e + 1, "test_accuracy": acc, "unix": time.time()}), flush=True)


if __name__ == "__main__":
    main()
