"""``portalis devcluster up|down|status|env``: the local GPU cluster, as a command of the ``portalis`` CLI.

Registered through the ``portalis.commands`` entry point of this distribution, so the runtime package never
imports the local-cluster tooling.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _devcluster(args: argparse.Namespace) -> int:
    from portalis_devcluster.build import BuildError
    from portalis_devcluster.cluster import DevCluster, DevClusterError
    from portalis_devcluster.node import RealNodeSpec
    from portalis_devcluster.nodes import FleetSpec

    fleet = FleetSpec(
        h100_nodes=args.h100_nodes,
        a100_nodes=args.a100_nodes,
        cpu_nodes=args.cpu_nodes,
        gpus_per_node=args.gpus_per_node,
    )
    real = RealNodeSpec.from_env()
    if args.real_node is not None:
        real = RealNodeSpec(enabled=args.real_node, gpus=real.gpus)
    if args.real_node_gpus is not None:
        real = RealNodeSpec(enabled=real.enabled, gpus=args.real_node_gpus)
    cluster = DevCluster(args.state_dir, fleet, real)
    try:
        if args.action == "up":
            cluster.up()
            print(f"export KUBECONFIG={cluster.kubeconfig}")
        elif args.action == "down":
            cluster.down()
        elif args.action == "status":
            for line in cluster.describe():
                print(line)
            return 0 if cluster.healthy() else 1
        elif args.action == "env":
            env = cluster.env()
            print(f"export KUBECONFIG={env['KUBECONFIG']}")
            print(f"export PATH={json.dumps(env['PATH'])}")
    except (BuildError, DevClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register(sub: Any) -> None:
    """Add ``devcluster`` to the ``portalis`` command's subparsers."""
    dc = sub.add_parser(
        "devcluster", help="the local GPU cluster (real control plane, KWOK GPU nodes, a real node, KubeRay)"
    )
    dc.add_argument("action", choices=["up", "down", "status", "env"])
    dc.add_argument("--state-dir", type=Path, default=None)
    dc.add_argument("--h100-nodes", type=int, default=4)
    dc.add_argument("--a100-nodes", type=int, default=4)
    dc.add_argument("--cpu-nodes", type=int, default=2)
    dc.add_argument("--gpus-per-node", type=int, default=8)
    dc.add_argument(
        "--real-node",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run one real node (containerd, kubelet, kube-proxy, CoreDNS) beside the KWOK fleet "
        "(default: on, or PORTALIS_DEVCLUSTER_REAL_NODE)",
    )
    dc.add_argument(
        "--real-node-gpus",
        type=int,
        default=None,
        help="nvidia.com/gpu the real node advertises (default 4, or PORTALIS_DEVCLUSTER_REAL_NODE_GPUS)",
    )
    dc.set_defaults(func=_devcluster)
