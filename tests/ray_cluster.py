"""One real two-node Ray cluster for the whole test session (started on first use).

The head node offers no CPU, so every run lands on a worker node; each worker node offers
one CPU and a custom resource (``node_a``, ``node_b``) that tests use to place runs. The
cluster is shut down at the end of the session and no raylet is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

# Generous on a loaded 2-core machine: a raylet can take several seconds to come up.
NODE_TIMEOUT_S = 120
FAKE_GPUS = {"node_a": 0, "node_b": 1}


@dataclass
class RayCluster:
    """The shared cluster: its address and worker nodes by custom resource name."""

    cluster: Any
    nodes: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self, name: str) -> None:
        """Start a one-CPU worker node offering the custom resource ``name`` and one GPU.

        The GPU is declared, not real (no test needs one): each node numbers its GPU as
        ``FAKE_GPUS[name]``, as a raylet started with that ``CUDA_VISIBLE_DEVICES`` would.
        """
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = str(FAKE_GPUS[name])
        try:
            self.nodes[name] = self.cluster.add_node(
                num_cpus=1, num_gpus=1, resources={name: 1}, wait=True, include_dashboard=False
            )
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES")
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        self.cluster.wait_for_nodes(NODE_TIMEOUT_S)

    def kill_node(self, name: str) -> None:
        """Kill a worker node abruptly (its raylet and workers), as a crashed machine."""
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def node_id(self, name: str) -> str:
        return str(self.nodes[name].node_id)


def _import_ray() -> Any:
    if os.environ.get("CI"):
        import ray  # CI installs the 'ray' extra (make install): a missing Ray must fail there

        return ray
    return pytest.importorskip("ray", reason="the Ray tests need: pip install -e '.[ray]'")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    ray = _import_ray()
    from ray.cluster_utils import Cluster

    # Worker processes inherit this environment: they must import the hyperjoule under test.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    shared = RayCluster(cluster)
    try:
        shared.add_node("node_a")
        shared.add_node("node_b")
        # One driver connection for the session: executors and in-process CLI runs reuse it.
        ray.init(address=shared.address, log_to_driver=False, logging_level="WARNING")
        yield shared
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def two_nodes(ray_cluster: RayCluster) -> RayCluster:
    """The shared cluster with both worker nodes up (a test may have killed one)."""
    for name in ("node_a", "node_b"):
        if name not in ray_cluster.nodes:
            ray_cluster.add_node(name)
    return ray_cluster
