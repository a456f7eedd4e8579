"""A run's checkpoints, ``<run dir>/checkpoints/<step>/``, written by orbax.

Each holds the whole train state (params, BatchNorm statistics, the optimizer state with
the LR and any adaptive state, step, dropout key) and a JSON ``progress`` record: epochs
done (with the seed, all the data order needs: batches are a pure function of seed and
epoch), the recorder's bookkeeping, the bytes of metrics.csv and the event files at that
moment, the times so far, and a SHA-256 of the state.

orbax's CheckpointManager writes a step into a temporary folder renamed when complete
(atomic), keeps the newest ``keep``, removes the temporary folders of killed writes when it
opens, and writes in a background thread: the state is copied to host memory first, so
the next epoch may reuse (donate) its device buffers. orbax does not check array bytes on
reading (measured: a zeroed block in an array file restores silently as other numbers),
hence the digest; a checkpoint that cannot be read, or does not match, gives way to the one
before it. orbax is imported only when a checkpoint is written or read: ~1.5 s of imports
the default run (which writes none) does not pay.

Before any array is read, the checkpoint's stored tree (every leaf's path, shape and dtype,
from its metadata) is compared with the state this run builds: another model, dataset
shape, optimizer or dtype is ``StateMismatch``, not a damaged checkpoint. Checked first
because orbax reads a checkpoint's arrays concurrently: a read that fails on a shape leaves
the others abandoned, and Python reports each of them (tracebacks of "Event loop is
closed", a different number each time) after our one line.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import numpy as np

from lrbench import faults
from lrbench.quiet import quiet_logger
from lrbench.train.sharding import Layout
from lrbench.train.state import TrainState

FOLDER = "checkpoints"


def _is_key(leaf) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _key_data(tree):
    """Typed PRNG keys as their uint32 data: plain arrays for any checkpoint format."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _with_keys(template, tree):
    return jax.tree.map(
        lambda t, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x,
        template,
        tree,
    )


def digest(host_tree) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    sha = hashlib.sha256()
    for leaf in jax.tree.leaves(host_tree):
        leaf = np.ascontiguousarray(leaf)
        sha.update(f"{leaf.dtype}{leaf.shape}".encode())
        sha.update(leaf.tobytes())
    return sha.hexdigest()


@dataclass(frozen=True)
class Restored:
    state: TrainState
    progress: dict
    step: int
    skipped: tuple[str, ...] = ()  # the newer checkpoints that could not be used, and why


class Checkpoints:
    def __init__(self, run_dir: Path, keep: int, folder: str = FOLDER) -> None:
        """``folder``: under ``run_dir`` (a vmap sweep keeps one per chunk of members)."""
        self.path = Path(run_dir) / folder
        self.keep = keep
        self._manager = None

    def _open(self):
        if self._manager is None:
            import orbax.checkpoint as ocp

            self._ocp = ocp
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.keep,
                cleanup_tmp_directories=True,
                enable_async_checkpointing=True,
            )
            self._manager = ocp.CheckpointManager(self.path.absolute(), options=options)
        return self._manager

    def steps(self) -> list[int]:
        """Steps of complete checkpoints, newest first (no orbax: folders named by step)."""
        if not self.path.is_dir():
            return []
        return sorted((int(p.name) for p in self.path.iterdir() if p.name.isdigit()), reverse=True)

    def clear(self) -> None:
        """A fresh run in a folder that held one: its checkpoints are not this run's."""
        shutil.rmtree(self.path, ignore_errors=True)

    def save(self, step: int, state: TrainState, progress: dict) -> None:
        """Start writing (returns once the state is in host memory)."""
        manager = self._open()
        host = Layout.to_host(_key_data(state))
        progress = dict(progress, state_sha256=digest(host))
        args = self._ocp.args.Composite(
            state=self._ocp.args.StandardSave(host), progress=self._ocp.args.JsonSave(progress)
        )
        manager.save(step, args=args)
        faults.point("checkpoint")

    def restore(
        self,
        template: TrainState,
        usable: Callable[[dict], str | None],
        *,
        prune_newer: bool = True,
    ) -> Restored | None:
        """The newest checkpoint that reads back whole and that ``usable(progress)`` accepts
        (None: yes, else the reason); newer ones are removed (``prune_newer``: a process
        that only reads them, in a multi-process run, leaves that to process 0), as a
        resumed run writes those
        steps again. None when there is no checkpoint; ``CheckpointError`` (naming each
        one's problem) when none can be used; ``StateMismatch`` when the newest checkpoint
        whose metadata reads holds a state of another structure, shapes or dtypes than
        ``template`` (this run's): no array of it is read."""
        if not self.steps():
            return None
        problems = []
        for step in self.steps():
            try:
                with quiet_logger(
                    "absl", logging.CRITICAL
                ):  # its own complaint would be a second line: ours says it
                    difference = self.mismatch(step, template)
                    if difference is not None:
                        raise StateMismatch(step, difference)
                    restored = self.read(step, template)
                problem = usable(restored.progress)
            except StateMismatch:
                raise
            except Exception as error:  # any failure to read is a damaged checkpoint
                text = str(error).split(" See full TensorStore details")[0]  # then its spec
                problem = f"{type(error).__name__}: {' '.join(text.split())[:200]}"
            if problem is None:
                for newer in self.steps() if prune_newer else ():
                    if newer > step:
                        self._open().delete(newer)
                return replace(restored, skipped=tuple(problems))
            _collect_abandoned_reads()
            problems.append(f"{FOLDER}/{step}: {problem}")
        raise CheckpointError("; ".join(problems))

    def mismatch(self, step: int, template: TrainState) -> str | None:
        """How checkpoint ``step``'s stored tree differs from ``template``'s (None: it does
        not), from its metadata alone: leaf paths, shapes and dtypes."""
        import orbax.checkpoint as ocp

        handler = ocp.StandardCheckpointHandler()
        try:
            stored = _layout(handler.metadata(self.path.absolute() / str(step) / "state").tree)
        finally:
            handler.close()
        wanted = _layout(_key_data(template))
        return None if stored == wanted else _difference(stored, wanted)

    def read(self, step: int, template: TrainState) -> Restored:
        """Checkpoint ``step`` into ``template``'s structure; raises if it reads back wrong."""
        manager = self._open()
        abstract = _key_data(template)
        args = self._ocp.args.Composite(
            state=self._ocp.args.StandardRestore(abstract), progress=self._ocp.args.JsonRestore()
        )
        restored = manager.restore(step, args=args)
        state, progress = restored["state"], dict(restored["progress"])
        if digest(jax.device_get(state)) != progress.pop("state_sha256", None):
            raise ValueError("the state's bytes do not match their SHA-256")
        return Restored(_with_keys(template, state), progress, step)

    def close(self) -> None:
        """Wait for a write in flight, then release orbax's threads."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None


def _layout(tree) -> dict[str, tuple[tuple[int, ...], str]]:
    """Leaf path (``opt_state.0.0.mu.Dense_0.kernel``, as orbax stores the tree) -> (shape,
    dtype): the same for a state and for a checkpoint's metadata of that state."""
    return {
        jax.tree_util.keystr(path, simple=True, separator="."): (
            tuple(leaf.shape),
            str(np.dtype(leaf.dtype)),
        )
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def _difference(stored: dict, wanted: dict, shown: int = 2) -> str:
    """The first differing leaves, for people: ``params.Dense_0.kernel: (64, 256) float32
    in the checkpoint, (64, 32) float32 now``."""

    def text(entry) -> str:
        return "absent" if entry is None else f"{entry[0]} {entry[1]}"

    differ = [k for k in dict.fromkeys([*stored, *wanted]) if stored.get(k) != wanted.get(k)]
    parts = [
        f"{k}: {text(stored.get(k))} in the checkpoint, {text(wanted.get(k))} now"
        for k in differ[:shown]
    ]
    more = len(differ) - shown
    return "; ".join(parts) + (f"; {more} more" if more > 0 else "")


def _collect_abandoned_reads() -> None:
    """orbax reads a checkpoint's arrays concurrently; when one read fails, the others are
    abandoned, and Python reports each of them (in tensorstore's threads or at any later
    collection, up to the process's exit, a different number each time): "Event loop is
    closed" when an abandoned read completes on orbax's closed event loop, "exception
    ignored" when its coroutine is collected. The failure is ours to report (one line): from
    the first failed read on, those two are not reported; any other goes to the hook there
    was. Collected here once too."""
    if not getattr(sys.unraisablehook, "_lrbench_quiet", False):
        sys.unraisablehook = _quiet_abandoned_reads(sys.unraisablehook)
    gc.collect()


def _quiet_abandoned_reads(hook):
    def quiet(unraisable) -> None:
        source = getattr(getattr(unraisable.object, "cr_code", None), "co_filename", "")
        abandoned = "orbax" in source or (
            isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == "Event loop is closed"
        )
        if not abandoned:
            hook(unraisable)

    quiet._lrbench_quiet = True
    return quiet


class CheckpointError(Exception):
    """No checkpoint of the run could be used (the message names each one's problem)."""


class StateMismatch(Exception):
    """The checkpoint holds a state of another structure, shapes or dtypes than the run's
    (another model, dataset shape, optimizer or dtype): not damage, a change it cannot
    take. The message names the first differing leaves."""

    def __init__(self, step: int, difference: str) -> None:
        super().__init__(f"{FOLDER}/{step}: {difference}")
        self.step, self.difference = step, difference
