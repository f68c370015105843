"""The alert runbooks (docs/runbooks/) run as written: every command of every ```bash block, against a real
TranslationCluster and TranslationJob on the local cluster, with the placeholders ($NS, $CLUSTER, $JOB,
$OPERATOR_NS, $REDIS_URL) set to the test's objects.

Commands run in order, each with ``bash -e``, in the directory that holds ``$JOB.yaml`` (the manifest the job was
created from, as the runbooks assume); variables a command sets carry over to the next, as in a terminal. Two things
a KWOK node cannot do are allowed for: a watch (``-w``, ``--follow``) never ends by design, so it passes once it has
printed and is stopped after a few seconds; and KWOK pods have no container logs, so ``kubectl logs`` of a pod may
fail with KWOK's "no logs found for container" (the command itself was valid and found its pods).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.helpers import Cluster, merge, wait_for
from portalis.clients.store import Store
from portalis_devcluster.cluster import DevCluster
from portalis_devcluster.operator import ROOT, OperatorProcess
from portalis_devcluster.servers import RedisServer, S3Server

pytestmark = pytest.mark.cluster

RUNBOOKS = ROOT / "docs" / "runbooks"
TESTED = ("budget-exceeded.md", "stuck-job.md", "queue-backlog.md", "redis-outage.md")
EXAMPLES = ROOT / "manifests" / "examples"
SAMPLE = ROOT / "examples" / "sample-codebase"
VENV_BIN = Path(sys.executable).parent
PLACEHOLDERS = ("NS", "CLUSTER", "JOB", "OPERATOR_NS", "REDIS_URL")
ARTIFACTS = "portalis-artifacts"  # the example cluster's storage bucket
WATCH_SECONDS = 6
COMMAND_TIMEOUT = 90

BLOCK = re.compile(r"^(?P<indent>[ \t]*)```bash[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
WATCH = re.compile(r"\s(-w|--watch|--follow)(\s|$)")
LOGS = re.compile(r"\bkubectl\b.*\slogs\s")
ASSIGNED = re.compile(r"(?:^|[;&|]\s*)([A-Z_][A-Z0-9_]*)=", re.M)
EXPORTED = re.compile(r"\bexport\s+([^;&|#]*)")
USED = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")
ALWAYS_SET = {"PATH", "HOME"}


# ---- reading the runbooks (pure) -----------------------------------------------------------------------------


def bash_blocks(markdown: str) -> list[str]:
    """The ```bash blocks of a Markdown file, dedented (blocks inside list items are indented)."""
    blocks = []
    for m in BLOCK.finditer(markdown):
        indent = len(m.group("indent"))
        blocks.append(
            "".join(line[indent:] if line[:indent].isspace() else line for line in m.group("body").splitlines(True))
        )
    return blocks


def complete(text: str) -> bool:
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def commands(block: str) -> list[str]:
    """A block split into complete commands: continuation lines and multi-line quotes stay together."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\") or not complete(pending):
            continue
        if pending.strip() and not pending.strip().startswith("#"):
            out.append(pending)
        pending = ""
    assert not pending, f"an incomplete command at the end of a block:\n{pending}"
    return out


def assigned(command: str) -> set[str]:
    """Variables a command sets: ``NAME=...`` at the start of a statement, and every name an ``export`` sets."""
    names = set(ASSIGNED.findall(command))
    for exported in EXPORTED.findall(command):
        names |= set(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", exported))
    return names


def used(command: str) -> set[str]:
    return set(USED.findall(command))


def substitute(command: str, values: dict[str, str]) -> str:
    """Set the documented placeholders of an ``export`` line to the test's values (other lines are left as is)."""
    if not re.match(r"\s*export\s", command):
        return command

    def value(m: re.Match[str]) -> str:
        name, current = m.group(1), m.group(2)
        if name not in values or current.startswith("$"):
            return m.group(0)
        return f"{name}={shlex.quote(values[name])}"

    return re.sub(r"\b([A-Z_][A-Z0-9_]*)=(\S+)", value, command)


def test_the_runbook_readers_split_and_substitute() -> None:
    text = (
        "intro\n```bash\nexport NS=a JOB=b   # c\nkubectl get \\\n  tc\n```\n\n"
        "- item\n\n  ```bash\n  X=$(echo 'a\n  b'); echo $X\n  ```\n"
    )
    blocks = bash_blocks(text)
    assert blocks == ["export NS=a JOB=b   # c\nkubectl get \\\n  tc\n", "X=$(echo 'a\nb'); echo $X\n"]
    assert commands(blocks[0]) == ["export NS=a JOB=b   # c", "kubectl get \\\n  tc"]
    assert commands(blocks[1]) == ["X=$(echo 'a\nb'); echo $X"]
    assert substitute("export NS=a JOB=b   # c", {"NS": "t-1", "JOB": "j"}) == "export NS=t-1 JOB=j   # c"
    assert substitute("export CLUSTER=$(kubectl get x)", {"CLUSTER": "c"}) == "export CLUSTER=$(kubectl get x)"
    assert substitute("NS=a kubectl get tc", {"NS": "b"}) == "NS=a kubectl get tc"
    assert assigned("A=1; B=$(x) && export C=2 D=3") == {"A", "B", "C", "D"}
    assert used('echo "$A/${B}" $3 $c') == {"A", "B"}


@pytest.mark.parametrize("name", TESTED)
def test_every_variable_a_runbook_uses_is_set_by_the_runbook(name: str) -> None:
    cmds = [c for block in bash_blocks((RUNBOOKS / name).read_text()) for c in commands(block)]
    assert cmds, f"{name} has no bash commands"
    first = cmds[0]
    assert first.startswith("export NS="), f"{name} should start with its placeholders: {first}"
    set_so_far: set[str] = set(ALWAYS_SET)
    for cmd in cmds:
        set_so_far |= assigned(cmd)
        missing = used(cmd) - set_so_far
        assert not missing, f"{name}: {sorted(missing)} used before the runbook sets it, in:\n{cmd}"


# ---- running them -------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    rc: int
    stdout: str
    stderr: str
    watched: bool = False

    def ok(self) -> bool:
        if self.watched:
            return True
        if self.rc == 0:
            return True
        # KWOK pods run no containers, so the kubelet API (KWOK's, on loopback) has no logs to give
        no_logs = "pods/log" in self.stderr or "no logs found for container" in self.stderr
        return bool(LOGS.search(self.command)) and no_logs

    def describe(self) -> str:
        return f"$ {self.command}\nexit {self.rc}\nstdout:\n{self.stdout[-1500:]}\nstderr:\n{self.stderr[-1500:]}"


class Shell:
    """Runs runbook commands one by one with bash -e, carrying the variables they set to the next."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.state = cwd / ".runbook-vars.sh"
        self.names: set[str] = set()

    def run(self, command: str) -> Outcome:
        self.names |= assigned(command)
        names = " ".join(sorted(self.names))
        script = (
            f"[ -f {shlex.quote(str(self.state))} ] && source {shlex.quote(str(self.state))}\n"
            f"{command}\n"
            f'for v in {names}; do if [ -n "${{!v+x}}" ]; then declare -p "$v"; fi; done > {self.state}.new\n'
            f"mv {self.state}.new {self.state}\n"
        )
        watch = bool(WATCH.search(command))
        proc = subprocess.Popen(
            ["bash", "-e", "-c", script],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=WATCH_SECONDS if watch else COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            if watch and out.strip():
                return Outcome(command, 0, out, err, watched=True)
            return Outcome(
                command, -1, out, err + f"\n(still running after {WATCH_SECONDS if watch else COMMAND_TIMEOUT}s)"
            )
        return Outcome(command, proc.returncode, out, err)


def secret(name: str, data: dict[str, str]) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded})


@pytest.fixture(scope="module")
def operator_namespace(kube: DevCluster) -> Iterator[str]:
    """The operator's Deployment as the chart installs it (release "portalis"), for the commands that name it.

    Its pod runs no container on KWOK (the operator under test is the local process), and RBAC is left out so
    nothing cluster-wide is created; `kubectl auth can-i` for its ServiceAccount then says no.
    """
    ns = f"rbop-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    helm = [
        str(kube.tc.helm),
        "install",
        "portalis",
        str(ROOT / "charts" / "portalis"),
        "-n",
        ns,
        "--wait",
        "--set",
        "rbac.create=false",
        "--set",
        "image.repository=registry.local/portalis",
    ]
    proc = subprocess.run(helm, capture_output=True, text=True, env=kube.env(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    try:
        yield ns
    finally:
        subprocess.run([str(kube.tc.helm), "uninstall", "portalis", "-n", ns], capture_output=True, env=kube.env())
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@dataclass
class Scene:
    values: dict[str, str]
    workdir: Path
    env: dict[str, str]


@pytest.fixture
def scene(
    operator: OperatorProcess,
    namespace: str,
    operator_namespace: str,
    redis_server: RedisServer,
    s3_server: S3Server,
    tmp_path: Path,
) -> Scene:
    """A TranslationCluster from the h100 example wired to the test Redis and S3 through the Secrets the runbooks
    name, Ready with its GPU workers on KWOK, and a Running job from the batch example with its items queued."""
    missing = [tool for tool in ("jq", "redis-cli", "base64") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the runbooks use {', '.join(missing)}: apt-get install jq redis-tools coreutils")
    kube = operator.kube
    c = Cluster(kube, namespace)
    cluster, job = "gpu", "rb-job"
    store = Store(s3_server.endpoint, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    bucket = f"rb-{namespace}"
    for b in (ARTIFACTS, bucket):
        store.ensure_bucket(b)
    for path in SAMPLE.rglob("*.py"):
        store.put_bytes(bucket, f"repo/{path.relative_to(SAMPLE).as_posix()}", path.read_bytes())
    c.kubectl("apply", "-f", "-", input=secret("portalis-redis", {"url": redis_server.url}))
    c.kubectl(
        "apply",
        "-f",
        "-",
        input=secret(
            "portalis-s3",
            {
                "AWS_ACCESS_KEY_ID": s3_server.access_key,
                "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            },
        ),
    )
    tc: dict[str, Any] = yaml.safe_load((EXAMPLES / "translationcluster-h100.yaml").read_text())
    tc = merge(
        tc,
        {"metadata": {"name": cluster}, "spec": {"storage": {"endpoint": s3_server.endpoint, "forcePathStyle": True}}},
    )
    c.kubectl("apply", "-f", "-", input=json.dumps(tc))
    tj: dict[str, Any] = yaml.safe_load((EXAMPLES / "translationjob-batch.yaml").read_text())
    tj = merge(
        tj,
        {
            "metadata": {"name": job},
            "spec": {
                "clusterRef": {"name": cluster},
                "source": {"bucket": bucket, "prefix": "repo/"},
                "output": {"bucket": bucket},
            },
        },
    )
    manifest = tmp_path / f"{job}.yaml"
    manifest.write_text(yaml.safe_dump(tj, sort_keys=False))
    c.kubectl("apply", "-f", str(manifest))
    wait_for(lambda: c.condition("tc", cluster, "Ready") == "True", timeout=90, interval=0.5)
    wait_for(lambda: c.condition("tj", job, "Planned") == "True", timeout=60, interval=0.5)
    assert c.get("tc", cluster)["status"]["rayClusterName"]

    env = {k: v for k, v in kube.env().items() if not k.startswith("AWS_")}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env["PATH"]])  # `kubectl portalis` resolves as a plugin
    for name in PLACEHOLDERS:
        env.pop(name, None)
    values = {
        "NS": namespace,
        "CLUSTER": cluster,
        "JOB": job,
        "OPERATOR_NS": operator_namespace,
        "REDIS_URL": redis_server.url,
    }
    return Scene(values, tmp_path, env)


@pytest.mark.parametrize("name", TESTED)
def test_every_command_of_the_runbook_runs(name: str, scene: Scene) -> None:
    shell = Shell(scene.workdir, scene.env)
    outcomes = []
    for block in bash_blocks((RUNBOOKS / name).read_text()):
        for cmd in commands(block):
            outcome = shell.run(substitute(cmd, scene.values))
            outcomes.append(outcome)
            how = "watched" if outcome.watched else ("ok" if outcome.rc == 0 else f"exit {outcome.rc}")
            print(f"[{how}] {outcome.command}")  # shown when the test fails
    assert outcomes
    failed = [o for o in outcomes if not o.ok()]
    assert not failed, f"{len(failed)} of {len(outcomes)} commands of {name} failed:\n\n" + "\n\n".join(
        o.describe() for o in failed
    )
    first = outcomes[0]
    assert f"NS={scene.values['NS']}" in first.command  # the placeholders were set to the test's objects
    state = (scene.workdir / ".runbook-vars.sh").read_text()
    assert f'NS="{scene.values["NS"]}"' in state
