"""Leader election against the real API server: one holder at a time, and a stopped leader hands over at once."""

from __future__ import annotations

import kubernetes
import pytest

from portalis.clients.kube import Kube
from portalis.clients.leader import LeaderElector
from portalis_devcluster.cluster import DevCluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def kube_client(kube: DevCluster) -> Kube:
    return Kube(kubernetes.config.new_client_from_config(config_file=str(kube.kubeconfig)))  # type: ignore[no-untyped-call]


def test_a_released_lease_is_taken_at_once_by_the_replica_that_waits(kube_client: Kube, namespace: str) -> None:
    first = LeaderElector(kube_client, namespace, identity="pod-a", lease_seconds=60)
    second = LeaderElector(kube_client, namespace, identity="pod-b", lease_seconds=60)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()  # held, and renewed within its 60 s
    first.release()
    assert second.try_acquire_or_renew()  # no waiting out the 60 s
    spec = second.api.read_namespaced_lease("portalis-operator", namespace).spec
    assert spec is not None and spec.holder_identity == "pod-b" and spec.lease_transitions == 1
    first.release()  # no longer the holder: leaves the Lease alone
    spec = second.api.read_namespaced_lease("portalis-operator", namespace).spec
    assert spec is not None and spec.holder_identity == "pod-b"
