"""The on-call playbook docs/runbooks/gpu-ecc.md, run as written against a node the test quarantined.

Every ```bash block of the runbook is executed with bash (``-e -o pipefail``) and the local kubectl on PATH, with
``$NODE``, ``$NS`` and ``$CLUSTER`` set to the quarantined node and its TranslationCluster (the runbook's first
block, which exports example values for them, is the one block not run). The runbook offers three ways out, and
each is a test: release with the annotation (Option A), release by hand (Option B), and replacing the node; the
blocks of the other two are left out. Each command must exit 0, and the node must end released (or gone).
``text`` blocks (commands that need the node's real GPU) are not run.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.gpu_health import Pool, is_quarantined, node, notification, portalis_marks, post, start_health_operator
from e2e.helpers import wait_for
from e2e.jobs import ARTIFACTS, JobEnv, job_env
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbooks" / "gpu-ecc.md"
FLEET = "runbook-" + uuid.uuid4().hex[:6]
SETUP = re.compile(r"^\s*export\s+(NODE|NS|CLUSTER)=")


@dataclass(frozen=True)
class Block:
    heading: str  # the nearest heading above the block
    code: str


def bash_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines: list[str] = []
    heading, inside = "", False
    for line in text.splitlines():
        if not inside and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif not inside and line.strip() == "```bash":
            inside, lines = True, []
        elif inside and line.strip() == "```":
            inside = False
            blocks.append(Block(heading, "\n".join(lines)))
        elif inside:
            lines.append(line)
    return blocks


def test_the_runbook_has_the_blocks_this_test_relies_on() -> None:
    blocks = bash_blocks(RUNBOOK.read_text())
    headings = {b.heading for b in blocks}
    assert {"Option A: one annotation", "Option B: by hand", "Check", "Replace the node", "Confirm"} <= headings
    assert all(SETUP.match(line) for line in blocks[0].code.splitlines() if line.strip())
    assert "portalis.dev/release=true" in "\n".join(b.code for b in blocks if b.heading.startswith("Option A"))
    by_hand = "\n".join(b.code for b in blocks if b.heading.startswith("Option B"))
    assert "uncordon" in by_hand and "portalis.dev/gpu-unhealthy:NoSchedule-" in by_hand


@pytest.fixture(scope="module")
def health_operator(crds: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    proc, _token = start_health_operator(crds, Path(tmp_path_factory.mktemp("runbook-operator")), FLEET)
    yield proc
    proc.stop()


@pytest.fixture
def pool(crds: DevCluster) -> Iterator[Pool]:
    p = Pool(crds, FLEET, 2).create()
    yield p
    p.delete()


@pytest.fixture
def env(health_operator: OperatorProcess, namespace: str, redis_server: RedisServer, s3_server: S3Server) -> JobEnv:
    return job_env(health_operator.kube, namespace, redis_server, s3_server, ARTIFACTS)


def quarantine_a_node(env: JobEnv, pool: Pool, operator: OperatorProcess) -> str:
    env.create_cluster(workers=pool.workers_spec(minWorkers=1, maxWorkers=1), health={"eccAction": "CordonAndDrain"})

    def worker_node() -> str | None:
        pods = env.cluster.get("pods", "-l", "portalis.dev/cluster=tc,portalis.dev/role=worker")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")]
        return running[0]["spec"]["nodeName"] if running else None

    target: str = wait_for(worker_node, timeout=60)
    assert post(operator.webhook_url, notification(target)) == 202
    wait_for(lambda: is_quarantined(node(env.cluster.kube, target)), timeout=15)

    def listed() -> bool:
        entries = (env.cluster.get("tc", "tc").get("status") or {}).get("quarantinedNodes") or []
        return any(e["name"] == target and e.get("phase") == "Drained" for e in entries)

    wait_for(listed, timeout=60)
    return target


def run_runbook(kube: DevCluster, skip: set[str], variables: dict[str, str]) -> list[str]:
    env = kube.env()
    env.update(variables)
    ran = []
    blocks = bash_blocks(RUNBOOK.read_text())
    for block in blocks[1:]:  # the first block exports example values for NODE, NS and CLUSTER
        if block.heading in skip:
            continue
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.code],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, (
            f"under {block.heading!r}:\n{block.code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
        ran.append(block.code)
    return ran


PATHS = {
    "annotation": {"Option B: by hand", "Replace the node"},
    "by-hand": {"Option A: one annotation", "Replace the node"},
    "replace": {"Option A: one annotation", "Option B: by hand", "Check"},
}


@pytest.mark.parametrize("path", list(PATHS))
def test_the_runbook_runs_as_written_and_the_node_ends_released(
    path: str, env: JobEnv, pool: Pool, health_operator: OperatorProcess
) -> None:
    kube = env.cluster.kube
    target = quarantine_a_node(env, pool, health_operator)
    ran = run_runbook(kube, PATHS[path], {"NODE": target, "NS": env.namespace, "CLUSTER": "tc"})
    assert len(ran) == len(bash_blocks(RUNBOOK.read_text())) - 1 - sum(
        1 for b in bash_blocks(RUNBOOK.read_text()) if b.heading in PATHS[path]
    )

    def listed() -> list[str]:
        return [e["name"] for e in (env.cluster.get("tc", "tc").get("status") or {}).get("quarantinedNodes") or []]

    if path == "replace":
        gone = kube.kubectl("get", "node", target, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
        wait_for(lambda: target not in listed(), timeout=20)
        return
    clean = {"unschedulable": False, "taints": [], "labels": {}, "annotations": {}}
    wait_for(lambda: portalis_marks(node(kube, target)) == clean, timeout=20)
    wait_for(lambda: target not in listed(), timeout=20)
    events = json.loads(
        kube.kubectl(
            "get",
            "events",
            "-A",
            "--field-selector",
            f"involvedObject.kind=Node,involvedObject.name={target},reason=NodeReleased",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert events, "no NodeReleased Event"
    reason = "annotation" if path == "annotation" else "taint removed"
    assert f"({reason})" in events[0]["message"]
