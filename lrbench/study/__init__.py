"""``lrbench study``: the optimizer-benchmark protocol (tune, choose, confirm) and its measures."""
