"""Where the Hydra configs are: inside the wheel, or at the root of a source checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """lrbench/conf in an installed wheel (force-included), else <repo>/conf."""
    packaged = _PACKAGE / "conf"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "conf"
