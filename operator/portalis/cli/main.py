"""``portalis``: run the operator or the data plane.

Other distributions add commands through the ``portalis.commands`` entry points: ``portalis devcluster``, the
local GPU cluster for development and tests, comes with the ``portalis-devcluster`` distribution (``devcluster/``),
which the runtime wheel does not include.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import entry_points

from portalis import __version__


def _cmd_operator_run(args: argparse.Namespace) -> int:
    # kopf imports every Kubernetes client library it finds, to log in through one of them. The operator talks
    # to the API server through the official client (kopf logs in through it as well); kubernetes_asyncio and
    # pykube only come along with dask-kubernetes, and not importing them keeps about 45 MB out of the process.
    for unused in ("kubernetes_asyncio", "pykube"):
        sys.modules.setdefault(unused, None)  # type: ignore[arg-type]
    from portalis.config import OperatorConfig
    from portalis.operator_main import run_operator

    try:
        config = OperatorConfig.from_env()
    except ValueError as exc:
        print(f"portalis operator: {exc}", file=sys.stderr)
        return 2
    config = replace(
        config,
        webhook_port=args.webhook_port,
        webhook_host=args.webhook_host,
        webhook_token_file=args.webhook_token_file or config.webhook_token_file,
    )
    return run_operator(
        config,
        namespaces=args.namespace or config.namespaces or None,
        health=f"http://{args.health_host}:{args.health_port}/healthz",
        metrics_port=args.metrics_port,
        verbose=args.verbose,
        leader_elect=args.leader_elect,
        leader_namespace=args.leader_election_namespace,
        log_format=args.log_format or config.log_format,
    )


def _worker(args: argparse.Namespace) -> int:
    """Hand the remaining arguments to the data plane's own parser."""
    if args.worker_command == "run":
        from portalis.worker import local

        return local.main(args.rest)
    if args.worker_command == "toolchains":
        from portalis.worker.verify import prepare

        return prepare.main(args.rest)
    from portalis.worker import ray_driver

    return ray_driver.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portalis", description=__doc__)
    parser.add_argument("--version", action="version", version=f"portalis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    op = sub.add_parser("operator", help="the Portalis operator")
    op_sub = op.add_subparsers(dest="operator_command", required=True)
    run = op_sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("-n", "--namespace", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("--health-host", default="0.0.0.0")
    run.add_argument("--health-port", type=int, default=8080)
    run.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics port (0 turns it off)")
    run.add_argument("--leader-elect", action="store_true", help="hold a Lease so only one replica is active")
    run.add_argument(
        "--leader-election-namespace", default=None, help="namespace of the Lease (default: POD_NAMESPACE)"
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="json for one structured object per line (default: env PORTALIS_LOG_FORMAT, else text)",
    )
    run.add_argument(
        "--webhook-port", type=int, default=0, help="port of POST /alerts, the Alertmanager webhook (0: off)"
    )
    run.add_argument("--webhook-host", default="0.0.0.0", help="address of the webhook receiver")
    run.add_argument(
        "--webhook-token-file",
        default=None,
        help="file with the bearer token POST /alerts requires (default: env PORTALIS_WEBHOOK_TOKEN_FILE)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_cmd_operator_run)

    wk = sub.add_parser("worker", help="the data plane: translation workers", add_help=False)
    wk.add_argument(
        "worker_command",
        choices=["run", "ray-driver", "toolchains"],
        help=(
            "run: local worker processes; ray-driver: translator actors on a Ray cluster; toolchains: make the "
            "compile checks ready (Rust crate set, build caches) and print their toolchains"
        ),
    )
    wk.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of the worker command (see its --help)")
    wk.set_defaults(func=_worker)

    for entry in entry_points(group="portalis.commands"):
        # optional commands from other distributions: `portalis devcluster` comes with portalis-devcluster
        entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "operator":  # the operator's logging is set up by kopf
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
