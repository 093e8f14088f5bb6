"""A multi-node Protostar on one machine: ``manage.py cluster`` (``make cluster``) and the cluster tests."""

from __future__ import annotations

from protostar.cluster.topology import Cluster, Node, Topology

__all__ = ["Cluster", "Node", "Topology"]
