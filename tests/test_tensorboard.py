"""TensorBoard event files of real runs, read back with TensorBoard's own reader."""

from __future__ import annotations

import math
import sys
import types

import pytest

from lrbench.cli import main
from lrbench.runs import METRIC_COLUMNS, read_metrics, read_summary
from lrbench.tb_events import BEST_TAGS, FINAL_TAGS


@pytest.fixture
def events(monkeypatch):
    """tensorboard's EventAccumulator without TensorFlow: its ``compat.notf`` marker
    selects the stub it ships (tensorflow may be installed for other reasons)."""
    monkeypatch.setitem(sys.modules, "tensorboard.compat.notf", types.ModuleType("notf"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    def read(run_dir):
        (event_file,) = run_dir.glob("events.out.tfevents.*")
        accumulator = EventAccumulator(str(event_file))
        accumulator.Reload()
        content = accumulator.PluginTagToContent("hparams")
        plugin_data = {
            tag: plugin_data_pb2.HParamsPluginData.FromString(data) for tag, data in content.items()
        }
        return accumulator, plugin_data

    return read


def _hparams(plugin_data) -> dict:
    start = plugin_data["_hparams_/session_start_info"].session_start_info
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}


def test_every_metrics_column_is_a_scalar_and_the_config_is_hparams(tmp_path, events):
    run = tmp_path / "run"
    args = ["train", "train.epochs=2", "train.log_every=4", "seed=3", f"hydra.run.dir={run}"]
    assert main(args) == 0
    accumulator, plugin_data = events(run)
    rows = read_metrics(run)
    for column in METRIC_COLUMNS[1:]:
        logged = [(r["step"], r[column]) for r in rows if r[column] is not None]
        scalars = [(e.step, e.value) for e in accumulator.Scalars(column)]
        assert [s for s, _ in scalars] == [s for s, _ in logged], column
        assert [v for _, v in scalars] == pytest.approx([v for _, v in logged], rel=1e-6)

    summary = read_summary(run)
    (best,) = accumulator.Scalars("best_val_accuracy")
    assert best.step == summary["steps"]
    assert best.value == pytest.approx(summary["best"]["val_accuracy"], rel=1e-6)

    hparams = _hparams(plugin_data)
    assert hparams["optimizer.name"] == "adam" and hparams["optimizer.lr"] == pytest.approx(1e-3)
    assert hparams["seed"] == 3 and hparams["train.epochs"] == 2
    assert hparams["model.widths"] == "[256,256]" and hparams["model.batch_norm"] is False
    assert hparams["status"] == "completed"
    assert "train.steps" not in hparams  # null: not an hparam value
    experiment = plugin_data["_hparams_/experiment"].experiment
    assert {m.name.tag for m in experiment.metric_infos} == {*FINAL_TAGS, *BEST_TAGS}
    assert {h.name for h in experiment.hparam_infos} == set(hparams)


def test_a_diverged_run_says_so_in_its_hparams(tmp_path, events):
    run = tmp_path / "run"
    args = ["train", "optimizer=sgd", "optimizer.lr=1e6", "train.epochs=1", f"hydra.run.dir={run}"]
    assert main(args) == 0
    accumulator, plugin_data = events(run)
    assert _hparams(plugin_data)["status"] == "diverged"
    last = accumulator.Scalars("train_loss")[-1]
    assert last.step == read_summary(run)["diverged_at_step"]
    assert not math.isfinite(last.value)
