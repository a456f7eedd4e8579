"""The LR range test: ``lrbench find-lr`` and ``optimizer.lr=auto``."""

from lrbench.lr_find.range_test import RangeTest, choose_lr, run_range_test

__all__ = ["RangeTest", "choose_lr", "run_range_test"]
