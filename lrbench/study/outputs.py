"""A study's results, from its units' ``unit.json``: ``study.json`` (everything),
``study.csv`` (one row per unit, the columns of docs/study.md), the plots and ``study.html``.
"""

from __future__ import annotations

import base64
import csv
import json
from html import escape
from pathlib import Path

from lrbench.study import analysis
from lrbench.study.runner import UNIT_FILE

STATS = ("mean", "std", "min", "max")


def read_units(study_dir: Path) -> list[dict]:
    """Every unit's record, in problem then optimizer order of the study's directories."""
    return [json.loads(p.read_text()) for p in sorted(Path(study_dir).glob(f"*/*/{UNIT_FILE}"))]


def completed(units: list[dict]) -> list[dict]:
    """The units with results (a failed one has its error instead)."""
    return [unit for unit in units if unit["status"] == "completed"]


def study_record(units: list[dict], study: dict) -> dict:
    """study.json: the study's config, its units, and the profile across problems."""
    costs: dict[str, dict[str, float | None]] = {}
    for unit in completed(units):
        costs.setdefault(unit["problem"], {})[unit["optimizer"]] = unit["target"]["steps_median"]
    taus = analysis.default_taus(costs)
    return {
        "study": study,
        "units": units,
        "performance_profile": {
            "cost": "steps_median",
            "tau": taus,
            "fraction": analysis.performance_profile(costs, taus),
        },
    }


def csv_row(unit: dict) -> dict:
    row = {
        "problem": unit["problem"],
        "optimizer": unit["optimizer"],
        "how": unit["how"],
        "status": unit["status"],
    }
    if unit["status"] != "completed":
        return row | {"error": unit["error"]}
    row["lr"] = unit["lr"]
    for metric in ("test_accuracy", "test_loss"):
        stats = unit["confirm"][metric]
        row |= {f"{metric}_{s}": stats[s] for s in STATS}
    target = unit["target"]
    row |= {
        "target": None if target["value"] is None else f"{target['metric']}>={target['value']}",
        "target_reached": f"{target['reached']}/{target['of']}",
        "steps_to_target": target["steps_median"],
        "seconds_to_target": target["seconds_median"],
    }
    tune = unit.get("tuneability") or {}
    row |= {
        "width_decades": tune.get("width_decades"),
        "fraction_diverged": tune.get("fraction_diverged"),
        "tuning_member_steps": unit["tuning_cost"]["member_steps"],
        "sensitivity": " ".join(
            f"{p['lr']:g}:{p['mean']:.4g}" for p in unit["sensitivity"] if p["mean"] is not None
        ),
    }
    expected = unit["expected_max"]
    row |= {f"expected_best@{k}": v for k, v in zip(expected["k"], expected["value"], strict=True)}
    return row


def write_csv(units: list[dict], path: Path) -> None:
    """Numbers to 6 significant digits (study.json keeps them whole)."""
    rows = [
        {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in csv_row(unit).items()}
        for unit in units
    ]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_study(study_dir: Path, study: dict) -> list[Path]:
    """Write study.json, study.csv, the plots and study.html; their paths (none: no unit)."""
    from lrbench.study.plots import write_plots

    units = read_units(study_dir)
    if not units:
        return []
    record = study_record(units, study)
    (study_dir / "study.json").write_text(json.dumps(record, indent=1) + "\n")
    write_csv(units, study_dir / "study.csv")
    images = write_plots(record | {"units": completed(units)}, study_dir)
    page = study_dir / "study.html"
    page.write_text(render_page(record, images))
    return [study_dir / "study.csv", study_dir / "study.json", page]


def render_page(record: dict, images: list[Path]) -> str:
    """One self-contained page: the units' table and every plot inlined."""
    from lrbench.analysis.report import STYLE

    rows = [csv_row(unit) for unit in record["units"]]
    columns = list(dict.fromkeys(key for row in rows for key in row if key != "sensitivity"))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    figures = "".join(
        f'<img alt="{escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}">'
        for p in images
    )
    name = escape(str(record["study"].get("name", "study")))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lrbench study {name}</title>"
        f"<style>{STYLE}</style></head><body><h1>Study {name}</h1>"
        f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>{figures}</body></html>\n"
    )


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
