"""Validation results fed back into the train state (reduce_on_plateau), on device.

The evaluation's device arrays go straight into a small jitted update of the optimizer
state, dispatched between epochs like the epochs themselves: nothing waits on the host.
"""

from __future__ import annotations

import jax

from lrbench.optim.plateau import Observe
from lrbench.train.evaluate import EvalMetrics
from lrbench.train.executables import Executables
from lrbench.train.sharding import ONE_DEVICE, Layout
from lrbench.train.state import TrainState


class ValidationFeedback(Executables):
    def __init__(self, observer: Observe, layout: Layout = ONE_DEVICE) -> None:
        """``observer``: ``optim.validation_observer``'s; ``layout.members``: the state and
        the evaluation have a leading axis of sweep members."""
        super().__init__()

        def observe(state: TrainState, evaluation: dict[str, EvalMetrics]) -> TrainState:
            val_loss = evaluation["val"].loss
            return state.replace(opt_state=observer(state.opt_state, val_loss))

        self._jitted = jax.jit(layout.over_members(observe, 0), donate_argnums=0)

    def __call__(self, state: TrainState, evaluation: dict[str, EvalMetrics]) -> TrainState:
        return self.get(None, self._jitted, state, evaluation)(state, evaluation)
