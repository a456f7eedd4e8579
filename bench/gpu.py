"""GPU figures (run by bench/gpu.sh on a machine with a CUDA GPU and JAX's CUDA plugin).

The CPU figures of bench/run.py that make sense on a GPU, plus a ResNet-20 and a wider CNN on
synthetic CIFAR-shaped data (32x32x3, batch 128) trained by lrbench's own epoch runner.
--smoke: tiny sizes, to check the script itself on any machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as cpu_bench  # noqa: E402  (after the sys.path entry)
from data import MNIST  # noqa: E402


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lrbench.config import register_schemas, to_run_config
    from lrbench.paths import conf_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return to_run_config(hydra_compose("config", overrides=list(overrides)))


def synthetic_image_steps_per_s(model_overrides: list[str], steps: int) -> dict:
    """lrbench's model, optimizer and scan runner on random 32x32x3 images, 10 classes."""
    from lrbench import models, optim
    from lrbench.config import Loop
    from lrbench.data import DataSpec
    from lrbench.train.runners import make_epoch_runner
    from lrbench.train.state import count_params, create_state
    from lrbench.train.step import make_train_step

    cfg = compose(*model_overrides)
    spec = DataSpec(input_shape=(32, 32, 3), n_classes=10, image_shape=(32, 32, 3))
    model = models.build(cfg.model, spec, jnp.float32, cfg.train.compute_dtype)
    tx = optim.build(cfg.optimizer, optim.build_multiplier(cfg.schedule, 10_000, steps))
    tx = optim.with_loss_scaling(tx, cfg.train.compute_dtype, cfg.optimizer)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((steps * 128, 32, 32, 3), np.float32))
    y = jnp.asarray(rng.integers(0, 10, steps * 128).astype(np.int32))
    state = create_state(model, tx, spec.input_shape, jax.random.key(0), jnp.float32)
    runner = make_epoch_runner(
        Loop.scan,
        make_train_step(model, tx),
        x=x,
        y=y,
        data_key=jax.random.key(1),
        batch_size=128,
        unroll=8,
    )
    state, metrics = runner(state, 0, steps)
    jax.block_until_ready(metrics)
    times = []
    for epoch in range(1, 4):
        start = time.perf_counter()
        state, metrics = runner(state, epoch, steps)
        jax.block_until_ready(metrics)
        times.append(steps / (time.perf_counter() - start))
    return {
        "steps_per_s": statistics.median(times),
        "compile_s": runner.compile_s,
        "n_params": count_params(state.params),
    }


def multi_gpu_scaling(reps: int, smoke: bool) -> dict:
    """Data-parallel (global batch 128 per device) and members-sharded vmap sweeps (8
    members per device) against one device: scaling efficiency = rate / (n x one device's)."""
    n = len(jax.devices())
    epochs = "train.epochs=2" if smoke else "train.epochs=10"
    model = ["model=cnn", "model.channels=[64,128,256]", "model.batch_norm=true", epochs]

    def median(overrides: list[str]) -> float:
        return statistics.median(cpu_bench.lrbench_steps_per_s(overrides) for _ in range(reps))

    one = median([*model, "train.batch_size=128"])
    data = median([*model, f"train.batch_size={128 * n}", "mesh=data"])

    def program(overrides: list[str]) -> float:
        runs = [cpu_bench.program_steps_per_s(overrides, devices=1) for _ in range(reps)]
        return statistics.median(runs)

    # a program step advances every member: n x the members on n devices at the same rate
    # is perfect scaling
    members_one = program(["sweep=vmap", "sweep.seeds=8", *model])
    members_all = program(["sweep=vmap", f"sweep.seeds={8 * n}", "mesh=members", *model])
    return {
        "devices": n,
        "data_parallel_efficiency": data / one,  # steps of n x the batch, per second
        "members_efficiency": members_all / members_one,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("gpu_results.json"))
    args = parser.parse_args()
    reps = 1 if args.smoke else 2
    results = {"devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "figures": {}}
    print(json.dumps(results), flush=True)

    def report(name, value):
        results["figures"][name] = value
        print(f"{name}: {json.dumps(value)}", flush=True)
        args.out.write_text(json.dumps(results, indent=2))

    from lrbench.cli import main as lrbench
    from lrbench.runs import read_summary

    with tempfile.TemporaryDirectory() as tmp:  # the default run, insisting on the GPU
        device = "device=auto" if args.smoke else "device=gpu"
        assert lrbench(["train", device, f"hydra.run.dir={tmp}"]) == 0
        summary = read_summary(tmp)
        keys = ("backend", "device", "steps_per_s", "compile_s", "loop")
        report(
            "default_run",
            {k: summary[k] for k in keys} | {"test_accuracy": summary["final"]["test_accuracy"]},
        )

    epochs = "train.epochs=2" if args.smoke else "train.epochs=20"
    for name, overrides in [
        ("digits_mlp", [epochs]),
        ("mnist_mlp", ["experiment=mnist_mlp", *cpu_bench.IDX, "train.epochs=3"]),
        ("mnist_cnn", ["dataset=mnist", *cpu_bench.IDX, "model=cnn", "train.epochs=1"]),
    ]:
        if name != "digits_mlp" and (args.smoke or not MNIST.exists()):
            continue
        ours = [cpu_bench.lrbench_steps_per_s(overrides) for _ in range(reps)]
        hand = [cpu_bench.handwritten_steps_per_s(name, "scan") for _ in range(reps)]
        report(
            f"steps_per_s/{name}",
            {
                "lrbench": statistics.median(ours),
                "handwritten_jax": statistics.median(hand),
                "ratio": statistics.median(ours) / statistics.median(hand),
            },
        )

    if MNIST.exists() and not args.smoke:
        report(
            "time_to_accuracy_s/mnist_mlp",
            {
                "lrbench": cpu_bench.lrbench_time_to_accuracy(epochs=3),
                "handwritten_jax": cpu_bench.baseline_time_to_accuracy("handwritten.py", 3),
            },
        )

    for name, overrides in [
        ("resnet20", ["model=resnet"]),
        (
            "cnn_wide",
            [
                "model=cnn",
                "model.channels=[64,128,256]",
                "model.dense=[512]",
                "model.batch_norm=true",
            ],
        ),
    ]:
        steps = 4 if args.smoke else 100
        fp32 = synthetic_image_steps_per_s(overrides, steps)
        if args.smoke and name == "resnet20":  # (bf16 is emulated on CPUs: minutes per step)
            report(f"synthetic_cifar/{name}", fp32)
            continue
        bf16 = synthetic_image_steps_per_s([*overrides, "train.compute_dtype=bfloat16"], steps)
        report(
            f"synthetic_cifar/{name}",
            fp32 | {"bf16": bf16, "bf16_speedup": bf16["steps_per_s"] / fp32["steps_per_s"]},
        )

    if len(jax.devices()) > 1:  # scaling efficiency over this machine's GPUs
        report("multi_gpu", multi_gpu_scaling(reps, smoke=args.smoke))

    with tempfile.TemporaryDirectory() as tmp:
        import sweeps

        grid = sweeps.lrs(4 if args.smoke else 16)
        common = ["train.epochs=2" if args.smoke else "train.epochs=20"]
        vmap = cpu_bench.wall(
            [
                sys.executable,
                "-m",
                "lrbench.cli",
                "train",
                "sweep=vmap",
                f"sweep.lr=[{grid}]",
                *common,
                f"hydra.run.dir={tmp}/v",
            ]
        )
        multirun = cpu_bench.wall(
            [
                sys.executable,
                "-m",
                "lrbench.cli",
                "train",
                "-m",
                f"optimizer.lr={grid}",
                *common,
                f"hydra.sweep.dir={tmp}/m",
                f"compile_cache={tmp}/cache",
            ]
        )
        report(
            "sweep_wall_s/digits_mlp",
            {
                "members": len(grid.split(",")),
                "vmap": vmap,
                "basic_multirun": multirun,
                "multirun_over_vmap": multirun / vmap,
            },
        )
    subprocess.run(["nvidia-smi", "--query-gpu=name,memory.used", "--format=csv"], check=False)


if __name__ == "__main__":
    main()
