"""The docs: every block marked runnable runs, the configuration reference is what its
generator prints, and the PyTorch comparisons docs/running.md states hold numerically."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = "<!-- runnable -->"


def runnable_blocks() -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """(file:line, [(command, expected output lines)]) of each fenced block right after the
    marker. A block is commands, or ``$ command`` lines each followed by its exact output."""
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != MARK:
                continue
            assert lines[i + 1].startswith("```"), f"{path.name}:{i + 1}: no block after the mark"
            end = next(k for k in range(i + 2, len(lines)) if lines[k].startswith("```"))
            body = lines[i + 2 : end]
            prompted = any(b.startswith("$ ") for b in body)
            commands: list[tuple[str, list[str]]] = []
            for b in body:
                if prompted and not b.startswith("$ "):
                    commands[-1][1].append(b)
                elif b.strip():
                    commands.append((re.sub(r"\s+#\s.*$", "", b.removeprefix("$ ")), []))
            found.append((f"{path.relative_to(ROOT)}:{i + 1}", commands))
    return found


BLOCKS = runnable_blocks()


def test_some_blocks_are_marked():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_runnable_block(block, tmp_path):
    """Each command in a temporary directory (the block's commands share it, in order)."""
    _, commands = block
    for command, expected in commands:
        argv = shlex.split(command)
        assert argv[0] == "lrbench", command
        done = run_cli(*argv[1:], cwd=tmp_path)
        output = (done.stdout + done.stderr).strip().splitlines()
        if expected:
            assert output == expected, command
        else:
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


def test_configuration_reference_is_generated():
    """docs/configuration.md is `python -m lrbench.config.reference`'s output (regenerate it
    with `python -m lrbench.config.reference > docs/configuration.md`)."""
    from lrbench.config.reference import markdown

    assert (ROOT / "docs" / "configuration.md").read_text() == markdown()


def test_list_prints_an_options_keys():
    from lrbench.config.reference import keys, render

    adam = {k.key: k for k in keys("optimizer", "adam")}
    assert adam["optimizer.lr"].default == "0.001" and adam["optimizer.lr"].range == "> 0"
    assert adam["optimizer.b1"].range == "[0, 1)" and adam["optimizer.b1"].type == "float"
    assert adam["optimizer.weight_decay"].meaning.startswith("L2 penalty")
    one_cycle = {k.key: k for k in keys("schedule", "one_cycle")}
    assert one_cycle["schedule.div_factor"].range == ">= 1"
    done = run_cli("list", "optimizer=adam")
    assert done.returncode == 0 and done.stdout.strip() == render("optimizer", "adam")
    bad = run_cli("list", "optimizer=adamx")
    assert bad.returncode == 2 and "optimizer=adamx: unknown option" in bad.stderr


def torch_one_cycle(total: int, pct: float, div: float, final_div: float) -> np.ndarray:
    """PyTorch's OneCycleLR (anneal_strategy="cos", three_phase=False, max_lr=1) transcribed:
    the LR the update of step k (0-based) applies."""
    initial, peak = 1 / div, 1.0
    phases = [(float(pct * total) - 1, initial, peak), (total - 1, peak, initial / final_div)]
    lrs = []
    for step in range(total):
        start = 0.0
        for i, (end, low, high) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                frac = (step - start) / (end - start)
                lrs.append(high + (low - high) / 2 * (math.cos(math.pi * frac) + 1))
                break
            start = end
    return np.array(lrs)


@pytest.mark.parametrize("total, pct", [(100, 0.3), (40, 0.25), (57, 0.3)])
def test_one_cycle_against_pytorch(total, pct):
    """docs/running.md "Schedules": our warm-up is one step longer than PyTorch's, then the
    same cosine one step later; our last update stops one step short of the minimum."""
    import jax

    from lrbench.config.schedule import OneCycleConfig
    from lrbench.optim import build_multiplier

    cfg = OneCycleConfig(name="one_cycle", pct_start=pct, div_factor=25.0, final_div_factor=1e4)
    ours = np.asarray(jax.vmap(build_multiplier(cfg, total, 10))(np.arange(total + 1)), float)
    theirs = torch_one_cycle(total, pct, 25.0, 1e4)
    peak = round(pct * total)
    assert int(np.argmax(ours)) == peak
    assert ours[0] == pytest.approx(theirs[0]) == pytest.approx(1 / 25)
    assert ours[total] == pytest.approx(theirs[-1], rel=1e-4)  # count T: no update applies it
    if float(pct * total).is_integer():
        assert int(np.argmax(theirs)) == peak - 1  # a warm-up of P - 1 steps, ours P
        np.testing.assert_allclose(ours[peak : total + 1], theirs[peak - 1 :], rtol=1e-4)
        assert not np.allclose(ours[1:peak], theirs[: peak - 1], rtol=1e-3)  # not a shift
    assert ours[total - 1] > theirs[-1] * 1.01  # our last update: one step before the end


def test_grad_clip_norm_against_pytorch(x64):
    """docs/running.md: optax's clip_by_global_norm is PyTorch's clip_grad_norm_
    (grads * min(1, c / (norm + 1e-6))) but for the 1e-6."""
    import jax.numpy as jnp
    import optax

    def torch_clip(grads, c):
        norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
        return [g * min(1.0, c / (norm + 1e-6)) for g in grads]

    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(5, 3)), rng.normal(size=7)]
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    for c in (0.5 * norm, 2 * norm, norm - 5e-7):
        clip = optax.clip_by_global_norm(c)
        ours, _ = clip.update([jnp.asarray(g, jnp.float64) for g in grads], clip.init(None))
        for mine, theirs in zip(ours, torch_clip(grads, c), strict=True):
            # relative 1e-6 / norm apart where either clips; equal where neither does
            np.testing.assert_allclose(np.asarray(mine), theirs, rtol=2e-6 / norm, atol=0)
