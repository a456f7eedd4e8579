"""Device meshes (issue 12) on 4 CPU devices (``--xla_force_host_platform_device_count``):
a data-parallel run equals the one-device run with the same global batch, a sweep's members
split over devices (and 2-D: members x data) equal the unsharded sweep member by member, and
the compiled step really is partitioned, and a streamed train split feeds each process only
its part of every batch. Real CLI runs in subprocesses (the device count is fixed when JAX
starts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from lrbench.runs import read_metrics, read_summary
from lrbench.train.sharding import process_columns
from lrbench.train.stream import CHUNKS_PER_BUDGET

FOUR_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
# BatchNorm (statistics over the global batch) and dropout (keys per step): both must come
# out the same however the batch is split. SGD with momentum: Adam's m / sqrt(v) turns
# rounding-level differences of near-zero gradients into O(1) ones, so it cannot show 1e-5.
RUN = (
    "optimizer=momentum",
    "optimizer.lr=0.05",
    "model.widths=[64,64]",
    "model.batch_norm=true",
    "model.dropout=0.1",
    "train.epochs=2",
    "train.log_every=1",
)
SWEEP = (*RUN, "sweep=vmap", "sweep.lr=[0.01,0.03,0.05,0.1]", "sweep.seeds=2", "train.epochs=2")
# successive halving: 4 settings -> 2 at epoch 1 (the survivors regathered on the mesh)
HALVED = (*SWEEP, "train.epochs=4", "sweep.prune.name=halving", "sweep.prune.eta=2")
LOSSES = ("train_loss", "val_loss", "test_loss")


def train(tmp_path, name: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrbench.cli", "train", *overrides, f"hydra.run.dir={name}"],
        cwd=tmp_path,
        env=FOUR_DEVICES,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_same_numbers(reference, run_dir, rtol: float = 1e-5) -> None:
    expected, got = read_metrics(reference), read_metrics(run_dir)
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for column in LOSSES:
        want = np.array([np.nan if r[column] is None else r[column] for r in expected])
        have = np.array([np.nan if r[column] is None else r[column] for r in got])
        np.testing.assert_allclose(have, want, rtol=rtol, err_msg=column)
    assert np.array_equal(
        [r["lr"] for r in got], [r["lr"] for r in expected]
    )  # the LR is replicated state: exactly the same


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The one-device run and sweep, and their sharded twins."""
    work = tmp_path_factory.mktemp("mesh")
    jobs = {
        "single": RUN,
        "data": (*RUN, "mesh=data"),
        "sweep": SWEEP,
        "members": (*SWEEP, "mesh=members"),
        "members_x_data": (*SWEEP, "mesh=members", "mesh.members=2", "mesh.data=2"),
        "halved": (*HALVED,),
        "halved_members": (*HALVED, "mesh=members"),
    }
    for name, overrides in jobs.items():
        result = train(work, name, *overrides)
        assert result.returncode == 0, result.stderr[-2000:]
    return work


def test_data_parallel_run_equals_the_one_device_run(runs):
    assert_same_numbers(runs / "single", runs / "data")
    summary = read_summary(runs / "data")
    assert (summary["devices"], summary["processes"]) == (4, 1)
    assert summary["mesh"] == {"members": 1, "data": 4}
    assert read_summary(runs / "single")["mesh"] is None


@pytest.mark.parametrize("sharded", ["members", "members_x_data"])
def test_sharded_sweep_members_equal_the_unsharded_sweep(runs, sharded):
    for member in range(8):
        assert_same_numbers(runs / "sweep" / str(member), runs / sharded / str(member))
    assert read_summary(runs / sharded / "0")["mesh"] == (
        {"members": 4, "data": 1} if sharded == "members" else {"members": 2, "data": 2}
    )


def test_a_pruned_sweep_sharded_over_members_equals_the_unsharded_one(runs):
    statuses = []
    for member in range(8):
        assert_same_numbers(runs / "halved" / str(member), runs / "halved_members" / str(member))
        statuses.append(read_summary(runs / "halved_members" / str(member))["status"])
    assert statuses.count("pruned") == 4 and statuses.count("completed") == 4


PARTITIONED = """
import json, jax
from conftest import compose_config
from lrbench.train.program import build_program
from lrbench.train.setup import prepared, run_keys
with prepared(compose_config("mesh=data", "train.loop=step")) as setup:
    program = build_program(setup, run_keys(0)[1])
    state = setup.layout().place(
        __import__("lrbench.train.state", fromlist=["x"]).create_state(
            setup.model, setup.tx, setup.dataset.spec.input_shape, run_keys(0)[0], setup.dtype
        )
    )
    state, metrics = program.runner(state, 0, 2)
    text = next(iter(program.runner._compiled.values())).as_text()
    print(json.dumps({
        "all_reduce": "all-reduce" in text,
        "params_devices": len(jax.tree.leaves(state.params)[0].sharding.device_set),
        "x_devices": len(program.runner.x.sharding.device_set),
    }))
"""


def test_the_compiled_step_is_partitioned_over_the_data_axis():
    """Each device computes on its slice of the batch: the gradients are all-reduced, the
    parameters stay replicated on all four devices, and so does the train split."""
    tests = os.path.dirname(__file__)
    result = subprocess.run(
        [sys.executable, "-c", PARTITIONED],
        env={**FOUR_DEVICES, "PYTHONPATH": tests},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"all_reduce": True, "params_devices": 4, "x_devices": 4}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ("mesh=data", "train.batch_size=126"),
            "train.batch_size=126: the global batch must split evenly over the data axis "
            "of 4 devices",
        ),
        (
            ("mesh=data", "mesh.data=8"),
            "mesh=data: members 1 x data 8 needs more devices than the 4 present",
        ),
        (
            ("mesh=members",),
            "mesh.members=-1: splits the members of a sweep: only with sweep=vmap "
            "(mesh=data for one run)",
        ),
        (
            ("sweep=vmap", "sweep.lr=[0.1,0.01,0.001]", "mesh=members"),
            "mesh.members=4: the sweep's 3 members (in chunks of sweep.max_members=64) must "
            "split evenly over 4 device groups",
        ),
        (
            ("mesh=data", "mesh.data=0"),
            "mesh.data=0: a positive number of devices, or -1 for the remaining",
        ),
        (
            ("mesh=data", "optimizer=lbfgs"),
            "mesh=data: optimizer=lbfgs: mesh=single",
        ),
    ],
)
def test_bad_mesh_is_one_line_exit_2_and_writes_nothing(tmp_path, overrides, message):
    result = train(tmp_path, "run", *overrides)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"lrbench: error: {message}"]
    assert not (tmp_path / "run").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pair(argv, *, cwd=None, fault=None, stdout=subprocess.PIPE) -> list[subprocess.Popen]:
    """Ranks 0 and 1 of a 2-process job, 2 CPU devices each: ``argv(rank)`` is each one's
    command, ``fault(rank)`` its LRBENCH_FAULT (None: none)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env.pop("LRBENCH_FAULT", None)
    processes = []
    for rank in (0, 1):
        spec = fault(rank) if fault else None
        processes.append(
            subprocess.Popen(
                argv(rank),
                cwd=cwd,
                env={**env, "LRBENCH_FAULT": spec} if spec else env,
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return processes


def _train_command(port: int, rank: int, *overrides: str) -> list[str]:
    """``lrbench train`` as process ``rank`` of 2 on loopback."""
    return [
        sys.executable,
        "-m",
        "lrbench.cli",
        "train",
        *overrides,
        "distributed=manual",
        f"distributed.coordinator_address=127.0.0.1:{port}",
        "distributed.num_processes=2",
        f"distributed.process_id={rank}",
        "distributed.timeout_s=60",
    ]


def test_two_processes_equal_one_process_with_as_many_devices(runs, tmp_path):
    """distributed=manual: two local processes of 2 CPU devices each (gloo collectives on
    loopback) train the data-parallel run of the 4-device process, and write one run
    directory (process 0's)."""
    port = _free_port()
    processes = _pair(
        lambda rank: _train_command(port, rank, *RUN, "mesh=data", "hydra.run.dir=run"),
        cwd=tmp_path,
    )
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:]
    assert_same_numbers(runs / "data", tmp_path / "run")
    summary = read_summary(tmp_path / "run")
    assert (summary["devices"], summary["processes"]) == (4, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no second run directory
    assert len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 1


def _two_processes(tmp_path, port: int, *overrides: str, kill_second_at: str | None = None):
    """Both processes of a 2-process job (2 CPU devices each) on loopback; the second one
    killed with -9 at the fault point ``kill_second_at``, then the first (blocked in a
    collective) too. Returns their exit codes."""
    processes = _pair(
        lambda rank: _train_command(port, rank, *overrides),
        cwd=tmp_path,
        fault=lambda rank: kill_second_at if rank == 1 else None,
        stdout=subprocess.DEVNULL,
    )
    if kill_second_at:
        processes[1].wait(timeout=300)
        processes[0].kill()
    errors = [p.communicate(timeout=300)[1] for p in processes]
    return [p.returncode for p in processes], errors


def test_a_two_process_run_killed_with_minus_9_resumes_to_the_same_numbers(tmp_path):
    """Checkpoints in orbax's multi-host mode (every process takes part, process 0 writes
    them): one process killed at its 3rd epoch, both relaunched with resume=<run dir>."""
    run = (*RUN, "train.epochs=4", "mesh=data", "train.checkpoint_every=1")
    codes, _ = _two_processes(
        tmp_path, _free_port(), *run, "hydra.run.dir=run", kill_second_at="epoch:3:KILL"
    )
    assert codes[1] == -signal.SIGKILL
    # process 0, its peer gone, fails in a collective (gloo: connection reset) and may write
    # a failed summary before the test kills it: either way the run goes on
    assert (read_summary(tmp_path / "run") or {"status": "failed"})["status"] == "failed"
    codes, errors = _two_processes(tmp_path, _free_port(), *run, f"resume={tmp_path / 'run'}")
    assert codes == [0, 0], errors[0][-2000:]
    reference = tmp_path / "reference"
    result = train(tmp_path, str(reference), *run)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_same_numbers(reference, tmp_path / "run")
    assert read_summary(tmp_path / "run")["resumed_from"][0] > 0


def test_an_unreachable_coordinator_is_one_line_after_the_timeout(tmp_path):
    result = train(
        tmp_path,
        "run",
        "distributed=manual",
        f"distributed.coordinator_address=127.0.0.1:{_free_port()}",
        "distributed.num_processes=2",
        "distributed.process_id=1",
        "distributed.timeout_s=3",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "lrbench: error: distributed=manual: could not join the job via 127.0.0.1:"
    )
    assert not (tmp_path / "run").exists()


def test_the_slurm_preset_makes_one_job_a_multi_host_run():
    """The composed config SLURM's launcher receives: nodes x tasks_per_node tasks, each
    joining the job through distributed=auto, the batch over all their devices."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from lrbench.config import register_schemas, to_run_config
    from lrbench.paths import conf_dir

    register_schemas()
    overrides = [
        "hydra/launcher=slurm",
        "hydra.launcher.nodes=2",
        "hydra.launcher.tasks_per_node=4",
        "hydra.launcher.gpus_per_node=4",
        "distributed=auto",
        "mesh=data",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        composed = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = composed.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    with open_dict(composed):
        del composed["hydra"]
    cfg = to_run_config(composed)
    assert cfg.distributed.name == "auto" and cfg.mesh.data == -1 and cfg.mesh.members == 1


# 360 train images of 10x10 bytes (+ an int32 label): 9 steps of 40 per epoch, streamed in
# chunks of 2 steps (the last one short) under this budget
STREAM_BUDGET = CHUNKS_PER_BUDGET * 2 * 40 * (10 * 10 + 4)


def streamed_run(folder) -> tuple[str, ...]:
    return (
        *RUN,
        "dataset=mnist",
        "dataset.source=idx",
        f"dataset.path={folder}",
        "dataset.mean=null",
        "dataset.std=null",
        "train.batch_size=40",
        f"dataset.max_device_bytes={STREAM_BUDGET}",
    )


def test_streamed_runs_over_processes_equal_the_unsharded_stream(tmp_path):
    """A streamed split (dataset.max_device_bytes) on one device, on a 4-device mesh, and
    over two processes of 2 devices that each ship only their half of every batch: the
    same global batches in the same order, so the same numbers."""
    from image_files import write_mnist_like

    from lrbench.cli import main

    run = streamed_run(write_mnist_like(tmp_path / "idx", n_train=400, n_test=40))
    assert main(["train", *run, f"hydra.run.dir={tmp_path / 'single'}"]) == 0  # one device
    result = train(tmp_path, "data", *run, "mesh=data")
    assert result.returncode == 0, result.stderr[-2000:]
    codes, errors = _two_processes(tmp_path, _free_port(), *run, "mesh=data", "hydra.run.dir=run")
    assert codes == [0, 0], errors[0][-2000:]
    assert read_summary(tmp_path / "single")["loop"].startswith("stream/")
    assert_same_numbers(tmp_path / "single", tmp_path / "data")
    assert_same_numbers(tmp_path / "data", tmp_path / "run")
    assert read_summary(tmp_path / "run")["processes"] == 2


PROCESS_PUT = """
import json, sys
import jax, numpy as np
from lrbench.config import Loop
from lrbench.train.sharding import DATA, MEMBERS, Layout
from lrbench.train.stream import StreamEpochs
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"127.0.0.1:{sys.argv[1]}", 2, int(sys.argv[2]))
puts, make = [], jax.make_array_from_process_local_data
def spy(sharding, local, shape):
    puts.append(local.shape)
    return make(sharding, local, shape)
jax.make_array_from_process_local_data = spy
mesh = jax.sharding.Mesh(np.array(jax.devices()).reshape(1, 4), (MEMBERS, DATA))
x, y = np.arange(96, dtype=np.float32).reshape(32, 3), np.arange(32, dtype=np.int32)
stream = StreamEpochs(Loop.scan, None, x=x, y=y, data_key=jax.random.key(0), batch_size=8,
                      unroll=1, max_device_bytes=2048, layout=Layout(mesh))  # chunks of 4 steps
rows = np.random.default_rng(0).permutation(32).reshape(4, 8)[:3]
chunk = stream._chunk(rows)
gx, gy = Layout.to_host(chunk)
print(json.dumps({
    "puts": puts,
    "shards": [list(s.data.shape) for s in chunk[0].addressable_shards],
    "chunk": bool((gx[:3] == x[rows]).all() and (gy[:3] == rows).all() and not gx[3].any()),
}))
"""


def test_each_process_ships_only_its_part_of_a_streamed_chunk(tmp_path):
    """Two processes of 2 devices: each puts (steps, half the batch, ...) from the host,
    each device holds a quarter of every batch, and the global chunk is the whole."""
    port = str(_free_port())
    processes = _pair(lambda rank: [sys.executable, "-c", PROCESS_PUT, port, str(rank)])
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[1][1][-2000:]
    for out, _ in outputs:
        assert json.loads(out.strip().splitlines()[-1]) == {
            "puts": [[4, 4, 3], [4, 4]],
            "shards": [[4, 2, 3], [4, 2, 3]],
            "chunk": True,
        }


def test_process_columns_are_the_shards_of_its_devices_in_order():
    """What make_array_from_process_local_data expects of one process: its devices'
    slices, each once (replicas on another axis), by start, even when not adjacent."""
    replicated = [slice(4, 6), slice(0, 2), slice(4, 6), slice(0, 2)]
    assert process_columns(replicated, 8).tolist() == [0, 1, 4, 5]
    assert process_columns([slice(None)], 3).tolist() == [0, 1, 2]
