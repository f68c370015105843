"""kopf settings chosen at start-up."""

from __future__ import annotations

import asyncio

import kopf

import portalis.controllers.root  # noqa: F401  (registers every handler)
from portalis.controllers import settings


def test_no_diff_base_is_built_while_no_handler_reads_one() -> None:
    registry = kopf.get_default_registry()
    assert not registry._changing.get_all_handlers(), "a create/update/delete handler needs the annotation storage"
    assert not registry._spawning.get_all_handlers(), "a daemon or timer needs the annotation storage"
    chosen = kopf.OperatorSettings()
    asyncio.run(settings.configure(chosen))
    assert chosen.queueing.worker_limit is None  # a limit below the objects present deadlocks kopf's start-up
    storage = chosen.persistence.diffbase_storage
    assert isinstance(storage, settings.NoDiffBase)
    body = kopf.Body({"metadata": {"name": "x", "annotations": {"a": "b"}}, "spec": {"big": list(range(1000))}})
    assert storage.build(body=body) == {} and storage.fetch(body=body) is None
