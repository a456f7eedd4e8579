"""summary.json's one contract (lrbench.summary): what a run writes is what it declares, and
the objective, the flat fields and the checked reader read it as documented."""

from __future__ import annotations

import math
import typing

import pytest
from fake_runs import summary as fake_summary

from lrbench.summary import (
    FIELDS,
    HIGHER_IS_BETTER,
    STATUSES,
    Best,
    Final,
    Objective,
    Summary,
    best,
    field,
    final,
    flat,
    read_checked_summary,
    read_summary,
)


def test_a_real_runs_summary_holds_only_declared_keys(cli, tmp_path):
    """The writer (lrbench.train) and the contract agree: every key written is declared."""
    result = cli("train", "train.epochs=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    written = read_summary(tmp_path)
    assert written["status"] in STATUSES
    assert set(written) <= set(typing.get_type_hints(Summary))
    assert set(written["final"]) <= set(typing.get_type_hints(Final))
    assert set(written["best"]) <= set(typing.get_type_hints(Best))
    assert read_checked_summary(tmp_path) == written
    # the first step is under way after the loop starts, before the run ends
    started = written["loop_started_unix"]
    assert started < written["first_step_unix"] < started + written["wall_s"]
    for objective in Objective:
        assert math.isfinite(objective.read(written)), objective


def test_objective_direction_and_best_of():
    for objective in Objective:
        assert objective.section in ("best", "final")
        assert objective.higher_is_better is objective.metric.endswith("accuracy")
        assert objective.higher_is_better is HIGHER_IS_BETTER[objective.metric]
        # the objective reads the number compare shows under its flat name
        assert FIELDS[objective.value.removeprefix("final_")] == (
            objective.section,
            objective.metric,
        )
    nan = float("nan")
    assert Objective.best_val_accuracy.best_of([0.5, nan, 0.9, 0.7]) == 0.9
    assert Objective.best_val_loss.best_of([0.5, nan, 0.2, 0.7]) == 0.2
    assert math.isnan(Objective.final_val_loss.best_of([nan, nan]))
    assert math.isnan(Objective.final_val_loss.best_of([]))


def test_lookups_are_tolerant_of_partial_summaries():
    done = fake_summary(val_accuracy=0.8, best_val_accuracy=0.85)
    assert final(done, "val_accuracy") == 0.8 and best(done, "val_accuracy") == 0.85
    assert field(done, "best_val_accuracy") == 0.85 and field(done, "eval_step") == 90
    assert Objective.final_test_accuracy.read(done) == 0.8
    failed = {"status": "failed", "error": "RuntimeError: boom"}
    assert flat(failed) == {name: None for name in FIELDS} | failed
    assert math.isnan(Objective.best_val_loss.read(failed))
    assert flat(None)["status"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"status": "compl', "=corrupt: not valid JSON (Unterminated string"),
        ('{"status": "done"}', "=corrupt: status 'done' is not one of completed, diverged,"),
        ("[1, 2]", "=corrupt: status [1, 2] is not one of"),
    ],
)
def test_the_checked_reader_names_the_file_and_the_fault(tmp_path, text, message):
    (tmp_path / "summary.json").write_text(text)
    with pytest.raises(ValueError, match=r"summary\.json") as error:
        read_checked_summary(tmp_path)
    assert message in str(error.value)
    assert read_checked_summary(tmp_path / "absent") is None
