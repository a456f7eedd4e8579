"""Reading many run directories back: ``lrbench compare``, ``plot`` and ``report``.

Nothing here imports JAX or TensorFlow (the schedule preview, which needs the optimizer
code, imports it when asked); matplotlib loads only for plots.
"""
