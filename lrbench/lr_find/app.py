"""``lrbench find-lr``: the LR range test as a Hydra application (conf/find_lr.yaml composes
the same groups as ``lrbench train``), writing its own run directory:

    config.yaml  lr_find.csv  lr_find.png  summary.json  train.log
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lrbench.config import register_schemas, resolved_dict, to_run_config
from lrbench.errors import BadInputExit, ConfigError
from lrbench.paths import conf_dir
from lrbench.runs import remove_unused_run_dir

register_schemas()


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="find_lr")
def find_lr(cfg: DictConfig) -> float | None:
    """Run the range test; returns the suggested LR (None if it diverged too early)."""
    # JAX and matplotlib load only when a test starts (tests/test_lr_find.py checks it)
    from lrbench.lr_find.plot import plot
    from lrbench.lr_find.range_test import run_range_test
    from lrbench.runs import RunDir
    from lrbench.train.report import versions

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_config = to_run_config(cfg)
        if run_config.resume is not None:
            raise ConfigError("resume", run_config.resume, "only for lrbench train")
        result = run_range_test(run_config)
    except ConfigError as error:
        remove_unused_run_dir(out_dir)
        raise BadInputExit(error) from error
    run_dir = RunDir(out_dir)
    run_dir.write_config(resolved_dict(cfg))
    result.write_csv(out_dir)
    plot(result, out_dir / "lr_find.png")
    summary = {"status": "completed", "kind": "lr_find"} | result.summary()
    run_dir.write_summary(summary | {"versions": versions()})
    chosen = result.chosen
    found = (
        "no suggestion (diverged too early)"
        if chosen is None
        else (f"{result.cfg.suggestion.value} lr {chosen.lr:.4g}")
    )
    others = ", ".join(
        f"{name} {s.lr:.4g}"
        for name, s in result.suggestions.items()
        if s is not None and name != result.cfg.suggestion.value
    )
    print(f"{out_dir}: {found}" + (f" ({others})" if others else ""))
    return None if chosen is None else chosen.lr
