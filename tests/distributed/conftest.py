"""Ray tests share one real two-node cluster per test session (see ``ray_cluster.py``)."""

from ray_cluster import ray_cluster, two_nodes

__all__ = ["ray_cluster", "two_nodes"]
