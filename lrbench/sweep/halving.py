"""Successive halving inside a vectorized sweep (``sweep.prune.name=halving``).

At each rung the live settings (a setting: the members that differ only in seed) are ranked
on the mean of the rank metric over their seeds (``rung_epochs``: the last eta settings
train to the end); the best 1/eta go on, the others end with
status ``pruned``, and diverged members leave. The survivors train on in a program compiled
for fewer members: their states, hyperparameters and data keys are gathered on the member
axis. Member counts are rounded up to a power of two (padding lanes repeat a survivor and
are not recorded), so the compiles stay few across sweeps of different sizes.

Hand-written: optax/Optuna prune separate trials (processes or jobs); no library prunes the
lanes of one compiled vmap program.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from lrbench.config.sweep import RANK_METRICS
from lrbench.train.recorder import Recorder
from lrbench.train.tracks import Lanes

log = logging.getLogger("lrbench")


def rung_epochs(n_settings: int, eta: int, epochs: int, eval_every: int) -> list[int]:
    """Epoch ends of the rungs. R = ceil(log_eta(G)) - 1 rungs take the G settings down to
    at most eta, which train to the end, where the LR is chosen among them: rung r = 1..R at
    E/eta^(R+2-r) (9 settings, eta 3: one rung at E/9, 9 -> 3). Halving down to one setting
    chose another LR than the full grid in 5 of 8 quick-study units (its rung at E/3 decides);
    keeping eta to the end chose the same LR in 8 of 8 at 41% of the member-steps (measured:
    docs/study.md). Each rung on an evaluation epoch, strictly increasing, before the last."""
    rungs = max(0, math.ceil(math.log(n_settings, eta) - 1e-9) - 1) if n_settings > 1 else 0
    ends = []
    for r in range(1, rungs + 1):
        at = epochs / eta ** (rungs + 2 - r)
        end = max(eval_every, round(at / eval_every) * eval_every)
        if end < epochs and (not ends or end > ends[-1]):
            ends.append(end)
    return ends


def bucket(n: int, groups: int) -> int:
    """Lanes for ``n`` survivors: the next power of two, a multiple of the mesh's groups."""
    size = max(1 << (n - 1).bit_length(), groups)
    return -(-size // groups) * groups


@dataclass
class Halving:
    """``lrbench.train.epochs.Rungs`` for one sweep chunk. ``settings[k]``: member k's
    setting (its values but the seed); ``rebuild(data_keys)``: the program for these keys."""

    lanes: Lanes
    settings: list[tuple]
    data_keys: jax.Array
    ends: list[int]
    metric: str
    eta: int
    groups: int  # the mesh's member groups (1: none)
    rebuild: Callable
    rebuild_s: float = 0.0
    lane_steps: int = 0  # steps computed by all lanes, padding and finished lanes included
    _members: list[int] = field(default_factory=list)  # lane -> member (index in the chunk)
    _recorders: list[Recorder] = field(default_factory=list)
    _steps_at: int = 0
    _programs: list = field(default_factory=list)  # those built at rungs

    @property
    def compile_s(self) -> float:
        """Building the smaller programs, and compiling them (on their first use)."""
        return self.rebuild_s + sum(program.compile_s for program in self._programs)

    def __post_init__(self) -> None:
        self._recorders = list(self.lanes.recorders)
        n = len(self._recorders)  # lanes past the members repeat the last (sweep.min_lanes)
        self._members = list(range(n)) + [n - 1] * (self.data_keys.shape[0] - n)

    def due(self, epoch: int) -> bool:
        return epoch + 1 in self.ends

    def prune(self, state, program, epochs_done: int):
        self._count_lane_steps()
        keep = self._survivors()
        if not keep:
            return state, program  # (every member is done: the loop stops)
        for k in sorted(set(self._members)):
            recorder = self._recorders[k]
            if k not in keep and not recorder.done:
                recorder.pruned_at = recorder.steps_done
                if recorder.progress is not None:
                    recorder.progress.pruned()
        log.info(
            "rung at epoch %d: %d of %d members go on", epochs_done, len(keep), len(self.settings)
        )
        lanes = [self._members.index(k) for k in keep]  # program lanes of the survivors
        lanes += [lanes[-1]] * (bucket(len(keep), self.groups) - len(lanes))
        if len(lanes) == len(self._members) and lanes == list(range(len(lanes))):
            return state, program  # nothing left the program
        index = jnp.asarray(lanes)
        # gathered, then laid out as before (a mesh's member axis stays sharded)
        state = jax.tree.map(lambda a: jax.device_put(a[index], a.sharding), state)
        self.data_keys = jax.device_put(self.data_keys[index], self.data_keys.sharding)
        self._members = [self._members[lane] for lane in lanes]
        # Lanes records program lane k into recorders[k]; padding lanes (past the
        # survivors) are not recorded
        self.lanes.recorders = [self._recorders[k] for k in keep]
        started = time.perf_counter()
        program = self.rebuild(self.data_keys)
        self.rebuild_s += time.perf_counter() - started
        self._programs.append(program)
        return state, program

    def finish(self) -> None:
        """Count the last segment's lane steps (after training ends)."""
        self._count_lane_steps()

    def _count_lane_steps(self) -> None:
        done = max(self._recorders[k].steps_done for k in set(self._members))
        self.lane_steps += (done - self._steps_at) * len(self._members)
        self._steps_at = done

    def _survivors(self) -> list[int]:
        """Members (chunk indices) that go on: every seed of the best 1/eta live settings."""
        by_setting: dict[tuple, list[int]] = {}
        for k in dict.fromkeys(self._members):
            if not self._recorders[k].done:
                by_setting.setdefault(self.settings[k], []).append(k)
        if not by_setting:
            return []
        sign = 1.0 if RANK_METRICS[self.metric] else -1.0

        def score(members: list[int]) -> float:
            values = [self._recorders[k].last_eval.get(self.metric) for k in members]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            return sign * float(np.mean(finite)) if finite else -math.inf

        ranked = sorted(by_setting.values(), key=score, reverse=True)  # stable: grid order on ties
        kept = ranked[: max(1, math.ceil(len(ranked) / self.eta))]
        return sorted(k for members in kept for k in members)
