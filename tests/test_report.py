"""``lrbench report``: one self-contained HTML file, checked as text and rendered in
headless Chromium (Debian's ``chromium`` package; skipped where it is not installed)."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from fake_runs import config, curve_rows, make_run, summary
from PIL import Image

from lrbench.cli import main

CHROMIUM = shutil.which("chromium")
WINDOW = (1280, 1600)
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 optimizers x 2 LRs x 2 seeds, one diverged, one running, one failed; one run's
    extra key holds markup that must be shown, not run."""
    root = tmp_path_factory.mktemp("study")
    job = 0
    for name in ("adam", "sgd"):
        base = config(f"optimizer={name}")
        for lr in (0.01, 0.1):
            for seed in (0, 1):
                cfg = base | {"seed": seed, "optimizer": base["optimizer"] | {"lr": lr}}
                value = 0.6 + lr + 0.2 * (name == "adam") + seed / 100
                make_run(root / str(job), cfg, summary(val_accuracy=value, steps=36),
                         curve_rows(36, lr))  # fmt: skip
                job += 1
    base = config("optimizer=sgd", "+note=x")
    cfg = base | {"seed": 2, "note": HOSTILE, "optimizer": base["optimizer"] | {"lr": 1.0}}
    make_run(
        root / "diverged", cfg, summary("diverged", val_accuracy=0.99, steps=5), curve_rows(5, 1.0)
    )
    make_run(root / "running", base | {"seed": 3}, None, curve_rows(10, 0.1))
    make_run(root / "failed", base | {"seed": 4}, {"status": "failed", "error": "boom"})
    return root


@pytest.fixture(scope="module")
def report(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(study), "-o", str(out)]) == 0
    return out


def test_the_report_is_one_self_contained_file(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert re.findall(r'(?:src|href)="(?!data:)', text) == []  # nothing to fetch
    assert "<script" not in text and "<link" not in text and "@import" not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 4  # LR sensitivity, val_loss, val_accuracy, lr used
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.size == (800, 500)


def test_the_table_is_sorted_and_each_config_is_one_click_away(report, study):
    text = report.read_text()
    runs_table = text.split("<h2>Runs</h2>")[1].split("<h2>Plots</h2>")[0]
    statuses = re.findall(r'<tr class="(\w+)">', runs_table)
    assert statuses == ["completed"] * 8 + ["diverged", "failed", "running"]
    # val_accuracy follows val_loss (0.3 in every summary); the diverged run's 0.99 is last
    accuracies = [float(v) for v in re.findall(r"<td>0\.3</td><td>([\d.]+)</td>", runs_table)]
    assert accuracies[:8] == sorted(accuracies[:8], reverse=True) and accuracies[8:] == [0.99]
    configs = re.findall(
        r"<details><summary>config</summary><pre>(.*?)</pre></details>", text, re.S
    )
    assert len(configs) == 11
    assert html.unescape(configs[0]) == (study / "3" / "config.yaml").read_text()  # adam 0.1 seed 1
    assert HOSTILE not in text and html.escape(HOSTILE) in text


def test_seeds_are_aggregated_with_the_best_group_marked(report):
    text = report.read_text()
    assert "<h2>val_accuracy by optimizer.name, optimizer.lr, note</h2>" in text
    groups = text.split("optimizer.lr, note</h2>")[1].split("<h2>Runs</h2>")[0]
    header = re.findall(r"<th>([^<]+)</th>", groups)
    assert header[:4] == ["optimizer.name", "optimizer.lr", "note", "n"]  # not name, b1, b2, eps
    rows = re.findall(r"<tr(?: class=\"(\w*)\")?>(.*?)</tr>", groups)[1:]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1])
    assert rows[0][0] == "best" and cells[:4] == ["adam", "0.1", "-", "2"] and cells[-1] == "*"
    assert float(cells[4]) == pytest.approx(np.mean([0.9, 0.91]))
    assert float(cells[5]) == pytest.approx(np.std([0.9, 0.91], ddof=1), rel=1e-3)
    assert [row[0] for row in rows[1:]] == [""] * (len(rows) - 1)


def _chromium(page, screenshot, tmp_path) -> str:
    """Render ``page`` to ``screenshot``; return Chromium's log (console messages included)."""
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={screenshot}",
        "--enable-logging=stderr", "--v=0", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_report_renders_in_headless_chromium_without_console_errors(report, tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><p>x</p><script>console.error('control')</script>")
    assert "control" in " ".join(
        line
        for line in _chromium(control, tmp_path / "c.png", tmp_path).splitlines()
        if ":CONSOLE" in line
    )  # the log does carry console messages

    screenshot = tmp_path / "report.png"
    log = _chromium(report, screenshot, tmp_path)
    assert [line for line in log.splitlines() if ":CONSOLE" in line] == []
    image = np.asarray(Image.open(screenshot).convert("RGB"))
    assert image.shape == (WINDOW[1], WINDOW[0], 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text, tables, row colours
    diverged_row = np.all(image == (0xFD, 0xE8, 0xE8), axis=-1).sum()
    assert diverged_row > 1000  # the diverged run's row is shaded


def test_bad_input_is_one_line_exit_2(study, tmp_path, capsys):
    assert main(["report", str(study), "-o", str(tmp_path / "report.pdf")]) == 2
    assert capsys.readouterr().err.startswith("lrbench: error: -o=")
    assert main(["report", str(tmp_path)]) == 2
    assert "no run directories" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
