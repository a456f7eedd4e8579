"""The LR range test: ``lrbench find-lr`` (``app``) and ``optimizer.lr=auto``
(``range_test.choose_lr``). Nothing is imported here, so the app loads without JAX."""
