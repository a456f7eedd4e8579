"""``conf/mesh/`` and ``conf/distributed/``: which devices a run uses, and how many hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from lrbench.config.base import Checked

REMAINING = -1  # a mesh axis of "the devices the other axis leaves"


@dataclass
class MeshConfig(Checked):
    """A device mesh (members x data); members x data devices are used. ``single``: one
    device and no mesh at all (the programs of a plain run)."""

    group: ClassVar[str] = "mesh"
    name: str = MISSING
    data: int = MISSING  # devices each member's global batch is split over
    members: int = MISSING  # device groups the members of a vmap sweep are split over

    def __post_init__(self) -> None:
        for key in ("data", "members"):
            if getattr(self, key) != REMAINING and getattr(self, key) < 1:
                self._fail(key, f"a positive number of devices, or {REMAINING} for the remaining")
        if self.data == REMAINING and self.members == REMAINING:
            self._fail("members", f"at most one axis can be {REMAINING} (the remaining devices)")

    @property
    def is_single(self) -> bool:
        return self.data == 1 and self.members == 1


@dataclass
class DistributedConfig(Checked):
    """One job over several processes (hosts): ``jax.distributed.initialize``."""

    group: ClassVar[str] = "distributed"
    name: str = MISSING
    coordinator_address: str | None = None  # host:port of process 0 (manual)
    num_processes: int | None = None
    process_id: int | None = None
    timeout_s: int = MISSING  # how long to wait for the coordinator and the other processes

    def __post_init__(self) -> None:
        self._positive("timeout_s")
        if self.name != "manual":
            return
        for key in ("coordinator_address", "num_processes", "process_id"):
            if getattr(self, key) is None:
                self._fail(key, "required with distributed=manual")
        if ":" not in self.coordinator_address:
            self._fail("coordinator_address", "host:port of process 0")
        self._positive("num_processes")
        if not 0 <= self.process_id < self.num_processes:
            self._fail(
                "process_id", f"in [0, {self.num_processes - 1}] (distributed.num_processes)"
            )


MESH_SCHEMAS: dict[str, type[MeshConfig]] = {
    "single": MeshConfig,
    "data": MeshConfig,
    "members": MeshConfig,
}
DISTRIBUTED_SCHEMAS: dict[str, type[DistributedConfig]] = {
    "none": DistributedConfig,
    "auto": DistributedConfig,
    "manual": DistributedConfig,
}
