"""A quarantined node's remediation: its Ray workers leave, the items they hold go back to the queue, and with
CordonAndDrain the remaining pods are evicted through the Eviction API (PodDisruptionBudgets respected) until
``drainTimeoutSeconds``. Each step is recorded on the Node (``portalis.dev/drain*``), so another operator
process resumes an unfinished drain from the node watch.

The Ray workers leave through their RayCluster's ``workersToDelete``: the cluster controller names there the
workers on Nodes quarantined for its cluster, as it reads them from the Nodes (``desired.health.removal``).
Workers the RayCluster does not name in time (another backend, or a cluster controller that is not running)
are evicted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from portalis import metrics
from portalis.api.meta import Key
from portalis.api.v1alpha1.cluster import Backend, EccAction, QuarantinePhase, TranslationClusterSpec
from portalis.clients.inflight import release_held_by
from portalis.clients.nodes import Eviction
from portalis.controllers.health.state import HealthState
from portalis.desired.health import build_phase_patch, drain_targets
from portalis.desired.podview import view_pod

log = logging.getLogger("portalis.health")

RAY_HANDOFF_SECONDS = 5.0  # time for the cluster controller to name the workers in the RayCluster
POLL_SECONDS = 0.2
EVICT_RETRY_SECONDS = 1.0


class Remediation:
    def __init__(self, state: HealthState) -> None:
        self.state = state

    def start(
        self,
        node: str,
        action: EccAction,
        clusters: tuple[Key, ...],
        deadline: float,
        spared: frozenset[str],
        workers: Mapping[Key, tuple[str, ...]] | None = None,
    ) -> None:
        tasks = self.state.tasks
        old = tasks.pop(node, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(
            self.remediate(node, action, clusters, deadline, spared, dict(workers or {})), name=f"quarantine-{node}"
        )
        tasks[node] = task
        task.add_done_callback(lambda t: tasks.pop(node, None) if tasks.get(node) is t else None)

    async def set_phase(self, node: str, keys: Iterable[Key], phase: QuarantinePhase, message: str) -> None:
        await asyncio.to_thread(self.state.api.annotate, node, build_phase_patch(phase, message))
        log.info("node %s: %s: %s", node, phase.value, message)
        self.state.enqueue_status(keys)

    async def remediate(
        self,
        node: str,
        action: EccAction,
        clusters: tuple[Key, ...],
        deadline: float,
        spared: frozenset[str],
        workers: dict[Key, tuple[str, ...]],
    ) -> None:
        started = time.monotonic()
        try:
            if not workers:
                workers = self.state.workers_on(node, clusters)
            if any(workers.values()):
                await self.remove_ray_workers(node, workers, deadline)
            if action != EccAction.CORDON_AND_DRAIN:
                names = sorted(p for pods in workers.values() for p in pods)
                removed = f"; removed Ray workers {', '.join(names)}" if names else ""
                await self.set_phase(node, clusters, QuarantinePhase.CORDONED, f"cordoned and tainted{removed}")
                return
            await self.drain(node, clusters, deadline, spared, started)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("node %s: remediation failed; the node stays cordoned", node)
        finally:
            self.state.finished[node] = time.monotonic()

    def _present(self, node: str, key: Key, pods: Iterable[str]) -> set[str]:
        return set(pods) & self.state.pod_names_on(node, key)

    def _named(self, key: Key, pods: Iterable[str]) -> bool:
        """Whether the cluster's RayCluster names ``pods`` in workersToDelete (a Ray cluster's only)."""
        return self.state.backend(key) == Backend.RAY.value and self.state.named_in_raycluster(key, pods)

    async def remove_ray_workers(self, node: str, workers: dict[Key, tuple[str, ...]], deadline: float) -> None:
        state = self.state
        for key, pods in workers.items():
            released = await asyncio.to_thread(self._release_items, key, pods)
            if released:
                text = f"Returned {len(released)} in-flight items of workers on quarantined node {node} to the queue"
                log.info("%s/%s: %s", key[0], key[1], text)
                await state.tc_event(key, "Normal", "ItemsRequeued", text)
        handoff = min(deadline, time.monotonic() + RAY_HANDOFF_SECONDS)
        while time.monotonic() < handoff:
            left = {k: self._present(node, k, pods) for k, pods in workers.items()}
            if not any(left.values()):
                break
            if all(self._named(k, p) for k, p in left.items()):
                break
            await asyncio.sleep(POLL_SECONDS)
        direct: dict[Key, set[str]] = {}
        for key, pods in workers.items():
            left_pods = self._present(node, key, pods)
            if left_pods and not self._named(key, left_pods):
                direct[key] = left_pods
        last_try = 0.0
        while True:
            left = {k: self._present(node, k, pods) for k, pods in workers.items()}
            if not any(left.values()) or time.monotonic() > deadline:
                break
            if direct and time.monotonic() - last_try >= EVICT_RETRY_SECONDS:
                last_try = time.monotonic()
                targets = [(k[0], p) for k, pods in direct.items() for p in pods if p in left.get(k, set())]
                results = await self._evict_all(targets)
                metrics.NODE_ACTIONS.labels("evict_ray_worker", "ok").inc(sum(1 for r in results if r.done))
            await asyncio.sleep(POLL_SECONDS)
        left = {k: self._present(node, k, pods) for k, pods in workers.items()}
        for key, pods in workers.items():
            gone = sorted(set(pods) - left.get(key, set()))
            how = (
                "by evicting them (the RayCluster did not name them)"
                if key in direct
                else "through the RayCluster's workersToDelete"
            )
            if gone:
                metrics.NODE_ACTIONS.labels("remove_ray_workers", "ok").inc(len(gone))
                text = (
                    f"Removed Ray workers {', '.join(gone)} from quarantined node {node} {how}; replacements are "
                    "scheduled on healthy nodes"
                )
                await state.tc_event(key, "Normal", "RayWorkersRemoved", text)
            if left.get(key):
                metrics.NODE_ACTIONS.labels("remove_ray_workers", "timeout").inc(len(left[key]))
                text = f"Ray workers {', '.join(sorted(left[key]))} are still on quarantined node {node}"
                await state.tc_event(key, "Warning", "RayWorkersNotRemoved", text)

    def _release_items(self, key: Key, pods: Iterable[str]) -> list[str]:
        tc = self.state.tc(key)
        if tc is None:
            return []
        try:
            spec = self.state.specs.parse(TranslationClusterSpec, tc)
            conns = self.state.connections.for_cluster(key[0], key[1], spec)
            return release_held_by(conns.queue, set(pods))
        except Exception as exc:  # the visibility timeout returns them later
            log.warning("%s/%s: could not return in-flight items to the queue now: %s", key[0], key[1], exc)
            return []

    async def _evict_all(self, targets: list[tuple[str, str]]) -> list[Eviction]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.state.pool, self.state.api.evict, ns, name) for ns, name in targets]
        return list(await asyncio.gather(*futures))

    async def drain(
        self, node: str, clusters: tuple[Key, ...], deadline: float, spared: frozenset[str], started: float
    ) -> None:
        api = self.state.api
        tried: dict[str, tuple[float, Eviction]] = {}
        reported: dict[str, str] = {}
        evicted = 0
        phase = QuarantinePhase.DRAINING
        first = True
        while True:
            bodies = await asyncio.to_thread(api.pods_on_node, node)
            by_name: dict[str, dict[str, Any]] = {
                f"{b['metadata'].get('namespace')}/{b['metadata']['name']}": b for b in bodies
            }
            targets = drain_targets([view_pod(b) for b in bodies], spared)
            if first:
                await self.set_phase(node, clusters, phase, f"evicting {len(targets)} pods")
                first = False
            if not targets:
                seconds = time.monotonic() - started
                message = f"drained: evicted {evicted} pods in {seconds:.1f}s; the node stays cordoned"
                await self.set_phase(node, clusters, QuarantinePhase.DRAINED, message)
                metrics.NODE_ACTIONS.labels("drain", "ok").inc()
                await self.state.events(node, clusters, "Normal", "DrainCompleted", f"Node {node} {message}")
                return
            now = time.monotonic()
            if now > deadline:
                names = ", ".join(f"{p.namespace}/{p.name}" for p in targets[:10])
                blockers = "; ".join(sorted(set(reported.values())))[:600]
                message = f"drain timed out with {len(targets)} pods left ({names}); the node stays cordoned"
                if blockers:
                    message += f". {blockers}"
                await self.set_phase(node, clusters, QuarantinePhase.DRAIN_TIMED_OUT, message)
                metrics.NODE_ACTIONS.labels("drain", "timeout").inc()
                await self.state.events(node, clusters, "Warning", "DrainTimedOut", f"Node {node}: {message}")
                return
            due = []
            for p in targets:
                ident = f"{p.namespace}/{p.name}"
                last = tried.get(ident)
                if p.deleting or (p.finished and last is not None):
                    continue
                if last is None or (not last[1].done and now - last[0] >= EVICT_RETRY_SECONDS):
                    due.append(p)
            if due:
                results = await self._evict_all([(p.namespace, p.name) for p in due])
                for p, r in zip(due, results, strict=True):
                    ident = f"{p.namespace}/{p.name}"
                    tried[ident] = (time.monotonic(), r)
                    metrics.NODE_ACTIONS.labels("evict", r.outcome).inc()
                    if r.outcome == "evicted":
                        evicted += 1
                    if r.outcome in ("blocked", "error"):
                        if ident not in reported:
                            labels = (by_name.get(ident, {}).get("metadata") or {}).get("labels") or {}
                            pdbs = await asyncio.to_thread(api.blocking_budgets, p.namespace, dict(labels))
                            by = (
                                f" by PodDisruptionBudget {', '.join(p.namespace + '/' + n for n in pdbs)}"
                                if pdbs
                                else ""
                            )
                            verb = "blocked" if r.outcome == "blocked" else "failed"
                            reported[ident] = f"eviction of pod {ident} {verb}{by}: {r.message}"
                            text = f"Drain of node {node}: {reported[ident]}; retrying until drainTimeoutSeconds"
                            log.warning("node %s: %s", node, text)
                            await self.state.events(node, clusters, "Warning", "DrainBlocked", text)
                    elif ident in reported:
                        del reported[ident]
                blocked = [i for i in reported if i in by_name]
                if blocked and phase != QuarantinePhase.DRAIN_BLOCKED:
                    phase = QuarantinePhase.DRAIN_BLOCKED
                    await self.set_phase(node, clusters, phase, "; ".join(reported[i] for i in blocked[:3]))
                elif not blocked and phase == QuarantinePhase.DRAIN_BLOCKED:
                    phase = QuarantinePhase.DRAINING
                    await self.set_phase(node, clusters, phase, f"evicting {len(targets)} pods")
            await asyncio.sleep(POLL_SECONDS)
