"""Benchmarks on the real node: Portalis as users run it (images built here, Redis and S3 in the cluster, the operator
from its chart), with TranslationClusters whose Ray pods run there. The helpers are the end-to-end tests' own
(``e2e/dataplane.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from e2e import dataplane
from e2e.dataplane import RealData

from bench.common import local_cluster
from portalis_devcluster import stack


class NoRealNode(RuntimeError):
    """The benchmark cannot run here; the message says why."""


@contextmanager
def real_data(name: str) -> Iterator[RealData]:
    """A local cluster with its real node (the default one with PORTALIS_BENCH_REUSE_CLUSTER=1) and the stack in
    namespaces of its own, removed afterwards."""
    with local_cluster(name) as kube:
        if kube.node() is None:
            raise NoRealNode(f"the local cluster runs no real node: {kube.state().node.reason}")
        try:
            with dataplane.real_data(kube, f"bench-{name}") as data:
                yield data
        except stack.StackError as exc:
            raise NoRealNode(str(exc)) from exc
