"""Sweeps: Hydra multirun with real launchers and sweepers, and the vectorized sweep."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from lrbench.cli import main
from lrbench.runs import read_metrics, read_summary
from lrbench.sweep.index import SweepIndex

TINY = ["train.epochs=1", "train.log_every=5"]


def job_dirs(sweep_dir):
    return sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
    )


def assert_complete_runs(sweep_dir, n: int) -> None:
    jobs = job_dirs(sweep_dir)
    assert len(jobs) == n
    for job in jobs:
        assert read_summary(job)["status"] == "completed", job
        assert read_metrics(job)
        assert (job / "config.yaml").exists()
    rows = SweepIndex(sweep_dir).read()
    assert sorted(int(row["job"]) for row in rows) == list(range(n))
    assert all(row["status"] == "completed" for row in rows)


def test_basic_multirun_indexes_every_job(tmp_path):
    assert (
        main(["train", "-m", "optimizer.lr=1e-3,1e-2", *TINY, f"hydra.sweep.dir={tmp_path}"]) == 0
    )
    assert_complete_runs(tmp_path, 2)
    lrs = {json.loads(row["overrides"])[0] for row in SweepIndex(tmp_path).read()}
    assert lrs == {"optimizer.lr=0.001", "optimizer.lr=0.01"}


def test_a_diverging_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    args = [
        "train",
        "-m",
        "optimizer=sgd",
        "optimizer.lr=1e6,1e-2",
        "train.epochs=2",
        f"hydra.sweep.dir={tmp_path}",
    ]
    assert main(args) == 0
    statuses = {row["overrides"]: row["status"] for row in SweepIndex(tmp_path).read()}
    assert sorted(statuses.values()) == ["completed", "diverged"]


def test_joblib_launcher_runs_jobs_in_parallel_processes(cli, tmp_path):
    result = cli(
        "train",
        "-m",
        "hydra/launcher=parallel",
        "optimizer.lr=1e-3,1e-2",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_complete_runs(tmp_path, 2)


def test_submitit_local_launcher(cli, tmp_path):
    result = cli(
        "train",
        "-m",
        "hydra/launcher=submitit_local",
        "optimizer.lr=1e-3,1e-2",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_complete_runs(tmp_path, 2)


def test_optuna_searches_the_learning_rate(tmp_path):
    args = [
        "train",
        "-m",
        "hparams_search=lr_optuna",
        "hydra.sweeper.n_trials=4",
        *TINY,
        f"hydra.sweep.dir={tmp_path}",
    ]
    assert main(args) == 0
    assert_complete_runs(tmp_path, 4)
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    best_lr = results["best_params"]["optimizer.lr"]
    assert 1e-5 <= best_lr <= 1.0
    best = max(float(row["best_val_accuracy"]) for row in SweepIndex(tmp_path).read())
    assert results["best_value"] == pytest.approx(best, rel=1e-6)


def _loopback_only_namespace() -> bool:
    """True when this process may create a network namespace (root): Ray then sees only lo."""
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


RAY_SWEEP = """
set -e
ip link set lo up
"$BIN/ray" start --head --node-ip-address=127.0.0.1 --port=6399 --num-cpus=2 \
    --include-dashboard=false --disable-usage-stats --temp-dir="$RAY_TMP" > "$TMP/ray.log" 2>&1
trap '"$BIN/ray" stop --force > /dev/null 2>&1' EXIT
"$BIN/python" -m lrbench.cli train -m hydra/launcher=ray_cluster \
    hydra.launcher.ray.init.address=127.0.0.1:6399 optimizer.lr=1e-3,1e-2 train.epochs=1 \
    hydra.sweep.dir="$TMP/sweep"
"""


@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the ray extra is not installed (pip install lrbench[ray])",
)
@pytest.mark.skipif(
    not _loopback_only_namespace(),
    reason="needs `unshare -n` (root) to keep Ray's traffic on loopback",
)
def test_ray_launcher_against_a_local_head(tmp_path):
    # Ray binds every interface it finds; in a fresh network namespace only loopback exists.
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # AF_UNIX paths: <= 107 bytes
    env = dict(os.environ, BIN=str(Path(sys.executable).parent), TMP=str(tmp_path), RAY_TMP=ray_tmp)
    try:
        result = subprocess.run(
            ["unshare", "-n", "bash", "-c", RAY_SWEEP],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = tmp_path / "ray.log"
    output = result.stdout + result.stderr + (log.read_text() if log.exists() else "")
    assert result.returncode == 0, output[-3000:]
    assert_complete_runs(tmp_path / "sweep", 2)


def _numeric_rows(run_dir):
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in read_metrics(run_dir)]


def test_vmap_sweep_members_reproduce_single_runs(tmp_path):
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    overrides = ["train.epochs=3", "train.log_every=1", "model.dropout=0.1"]
    assert (
        main(
            [
                "train",
                "sweep=vmap",
                f"sweep.lr={lrs}",
                *overrides,
                f"hydra.run.dir={tmp_path / 'sweep'}",
            ]
        )
        == 0
    )
    members = job_dirs(tmp_path / "sweep")
    assert len(members) == 4
    for k, lr in enumerate(lrs):
        single = tmp_path / f"single{k}"
        assert main(["train", f"optimizer.lr={lr}", *overrides, f"hydra.run.dir={single}"]) == 0
        assert yaml.safe_load((members[k] / "config.yaml").read_text()) == yaml.safe_load(
            (single / "config.yaml").read_text()
        )
        vmapped, alone = _numeric_rows(members[k]), _numeric_rows(single)
        assert [r["step"] for r in vmapped] == [r["step"] for r in alone]
        for a, b in zip(vmapped, alone, strict=True):
            for key, value in b.items():
                if value is None:
                    assert a[key] is None
                elif key.endswith("accuracy"):  # at most one example may flip
                    assert abs(a[key] - value) <= 1 / 128 + 1e-6, key
                else:  # batched kernels sum in another order: not bitwise, ~1e-6
                    assert a[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        summary = read_summary(members[k])
        assert summary["sweep"]["members"] == 4
        assert set(summary) >= set(read_summary(single))
    rows = SweepIndex(tmp_path / "sweep").read()
    assert [json.loads(r["overrides"])["optimizer.lr"] for r in rows] == lrs


def test_vmap_sweep_masks_a_diverging_member_and_goes_on(tmp_path):
    args = [
        "train",
        "sweep=vmap",
        "optimizer=sgd",
        "sweep.lr=[1e-2,1e6]",
        "sweep.seeds=2",
        "sweep.max_members=3",
        "train.epochs=3",
        f"hydra.run.dir={tmp_path}",
    ]
    assert main(args) == 0
    summaries = [read_summary(d) for d in job_dirs(tmp_path)]
    assert [s["status"] for s in summaries] == ["completed", "completed", "diverged", "diverged"]
    assert [s["sweep"]["members"] for s in summaries] == [3, 3, 3, 1]  # chunks of 3
    assert summaries[0]["steps"] == 27 and summaries[2]["steps"] < 27
    seeds = [yaml.safe_load((d / "config.yaml").read_text())["seed"] for d in job_dirs(tmp_path)]
    assert seeds == [0, 1, 0, 1]
    assert read_metrics(job_dirs(tmp_path)[0]) != read_metrics(job_dirs(tmp_path)[1])


def test_vmap_sweep_over_other_hyperparameters(tmp_path):
    args = [
        "train",
        "sweep=vmap",
        "optimizer=momentum",
        "sweep.hparams={momentum:[0.0,0.9]}",
        "sweep.weight_decay=[0.0,1e-3]",
        *TINY,
        f"hydra.run.dir={tmp_path}",
    ]
    assert main(args) == 0
    configs = [
        yaml.safe_load((d / "config.yaml").read_text())["optimizer"] for d in job_dirs(tmp_path)
    ]
    assert [(c["weight_decay"], c["momentum"]) for c in configs] == [
        (0.0, 0.0),
        (0.0, 0.9),
        (0.001, 0.0),
        (0.001, 0.9),
    ]
    losses = [read_metrics(d)[-1]["train_loss"] for d in job_dirs(tmp_path)]
    assert len(set(losses)) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sweep.lr=[1e-3,-1.0]"], "sweep.lr=[0.001, -1.0]: every learning rate must be > 0"),
        (
            ["sweep.hparams={nesterov:[0.0]}"],
            "sweep.hparams=nesterov: a float hyperparameter of adam",
        ),
        (["sweep.hparams={b1:[1.5]}"], "optimizer.b1=1.5: must be in [0, 1)"),
        (
            ["sweep.hparams={b1:[high]}"],
            "sweep.hparams={'b1': ['high']}: a mapping of hyperparameter",
        ),
        (["optimizer=lbfgs"], "sweep=vmap: optimizer=lbfgs is full-batch"),
    ],
)
def test_bad_vmap_sweeps_are_one_line_errors(overrides, message, tmp_path, capsys):
    assert main(["train", "sweep=vmap", *overrides, f"hydra.run.dir={tmp_path / 'x'}"]) == 2
    assert capsys.readouterr().err.startswith(f"lrbench: error: {message}")
    assert not (tmp_path / "x").exists()


def test_compilation_cache_is_filled_and_shared(cli, tmp_path):
    cache = tmp_path / "cache"
    listings = []
    for run in ("a", "b"):  # two processes, as two jobs of a sweep
        result = cli(
            "train",
            *TINY,
            f"compile_cache={cache}",
            f"hydra.run.dir={tmp_path / run}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        listings.append(sorted(p.name for p in cache.iterdir()))
    assert listings[0], "no compiled program was cached"
    assert listings[1] == listings[0], "the second job compiled programs the first had cached"


def test_index_rows_survive_concurrent_writers(tmp_path):
    code = (
        "import sys; from pathlib import Path; from lrbench.sweep.index import SweepIndex\n"
        "for i in range(50): SweepIndex(sys.argv[1]).append(int(sys.argv[2]) * 100 + i, "
        "Path('x'), [], {'status': 'completed'})"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(w)]) for w in range(4)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    with open(tmp_path / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["job"]) for r in rows) == sorted(
        w * 100 + i for w in range(4) for i in range(50)
    )
    assert np.all([r["status"] == "completed" for r in rows])


def test_index_append_many_writes_a_chunk_and_replaces_its_jobs_rows(tmp_path):
    index = SweepIndex(tmp_path)
    index.append(0, Path("a/0"), {"optimizer.lr": 0.1}, None)
    index.append(5, Path("a/5"), {"optimizer.lr": 0.5}, {"status": "completed", "steps": 9})
    index.append_many(
        (job, Path(f"a/{job}"), {"optimizer.lr": job / 10}, {"status": "completed", "steps": 3})
        for job in range(3)
    )
    rows = {row["job"]: row for row in index.read()}
    assert sorted(rows, key=int) == ["0", "1", "2", "5"]  # job 0's row replaced, once
    assert rows["0"]["status"] == "completed" and rows["0"]["steps"] == "3"
    assert rows["5"]["steps"] == "9"  # another job's row stays
    assert json.loads(rows["2"]["overrides"]) == {"optimizer.lr": 0.2}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_member_keys_are_each_seeds_run_keys_bit_for_bit(dtype):
    """One program for all members gives each the keys a single run of its seed uses (and
    jax.random's own, eagerly), with and without 64-bit mode, over the seed range."""
    import jax

    from lrbench.config import DType
    from lrbench.train.setup import member_keys, precision, run_keys

    seeds = [0, 1, 12345, 2**31 - 1, 2**31, 2**32 - 1]
    with precision(DType(dtype)):
        init_keys, data_keys = member_keys(seeds)
        for k, seed in enumerate(seeds):
            eager = jax.random.split(jax.random.key(seed))
            for keys in (run_keys(seed), (init_keys[k], data_keys[k]), tuple(eager)):
                assert [jax.random.key_data(key).tolist() for key in keys] == [
                    jax.random.key_data(key).tolist() for key in eager
                ]


def test_a_single_runs_seeded_state_is_create_state_of_its_run_keys():
    """Keys and initialization in one program: the same state and data key, bit for bit."""
    import jax
    from conftest import compose_config

    from lrbench.train.setup import prepared, run_keys, seeded_state
    from lrbench.train.state import create_state

    def host(tree):
        keys = jax.dtypes.prng_key
        return jax.tree.leaves(
            jax.tree.map(
                lambda a: jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, keys) else a,
                tree,
            )
        )

    cfg = compose_config("seed=3", "model.batch_norm=true", "model.dropout=0.1")
    with prepared(cfg) as setup:
        init_key, data_key = run_keys(cfg.seed)
        spec = setup.dataset.spec
        state = create_state(setup.model, setup.tx, spec.input_shape, init_key, setup.dtype)
        expected = host((state, data_key))
        got = host(seeded_state(setup, cfg.seed))
    assert len(got) == len(expected)
    pairs = zip(got, expected, strict=True)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in pairs)
