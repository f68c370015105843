"""The ``kubectl portalis`` command line: kubectl's connection flags and one subcommand per module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from portalis.cli.kubeconfig import PluginError
from portalis.cli.kubectl.cost import WINDOWS, cmd_cost
from portalis.cli.kubectl.logs import cmd_logs
from portalis.cli.kubectl.release import UNHEALTHY_TAINT, cmd_release_node
from portalis.cli.kubectl.status import cmd_status
from portalis.cli.kubectl.submit import DEFAULT_POLL_SECONDS, PRIORITIES, TARGETS, cmd_submit
from portalis.desired.health import RELEASE_ANNOTATION


def _common(suppress: bool) -> argparse.ArgumentParser:
    """kubectl's connection flags, accepted before or after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("cluster connection (as kubectl)")
    g.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    g.add_argument("--context", default=default, help="kubeconfig context (default: the current context)")
    g.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's namespace)")
    return p


def _all_namespaces(p: argparse.ArgumentParser) -> None:
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def _positive(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl portalis",
        description="Portalis TranslationClusters and TranslationJobs from the command line.",
        parents=[_common(suppress=False)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  kubectl portalis status -A\n"
            "  kubectl portalis submit ./src --cluster h100 -n ml-platform --max-failed-items 10%\n"
            "  kubectl portalis logs tj/batch-monorepo -n ml-platform --follow\n"
            "  kubectl portalis cost --window week -o json\n"
            "  kubectl portalis release-node gpu-h100-3"
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(suppress=True)

    st = sub.add_parser(
        "status",
        parents=[common],
        help="clusters and jobs at a glance",
        description="Clusters (workers ready/desired, GPUs, queue depth, today's spend vs limit, Ready) and jobs "
        "(priority, progress, done/total, cost, ETA, phase), then every condition that is not OK with its message.",
    )
    _all_namespaces(st)
    st.set_defaults(func=cmd_status)

    sm = sub.add_parser(
        "submit",
        parents=[common],
        help="upload a source tree and translate it",
        description="Upload the files of DIR that match the include globs to the cluster's S3 store, create a "
        "TranslationJob for them and follow it to the end. The S3 endpoint, bucket and credentials come from the "
        "TranslationCluster's spec.storage and its credentials Secret; --s3-endpoint and AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL override them. Exits 0 when the job Succeeded, "
        "1 when it Failed or the timeout passed.",
    )
    sm.add_argument("directory", metavar="DIR", help="local source tree")
    sm.add_argument("--cluster", required=True, help="TranslationCluster, NAME or NAMESPACE/NAME")
    sm.add_argument("--name", help="job name (default: the directory's name and a random suffix)")
    sm.add_argument(
        "--priority",
        default="Batch",
        type=_choice(PRIORITIES),
        help="Interactive, Batch (default), Training or LowPriority",
    )
    sm.add_argument(
        "--target", default="rust", type=_choice(TARGETS), help="language to translate into: rust (default), go or cpp"
    )
    sm.add_argument("--bucket", help="bucket for the sources (default: the cluster's storage bucket)")
    sm.add_argument("--prefix", help="key prefix for the sources (default: sources/<job name>/)")
    sm.add_argument(
        "--include", action="append", metavar="GLOB", help="files to upload and translate (repeatable; default **/*.py)"
    )
    sm.add_argument("--exclude", action="append", metavar="GLOB", help="files to leave out (repeatable)")
    sm.add_argument("--max-failed-items", metavar="N|P%", help="files that may fail while the job still succeeds")
    sm.add_argument("--s3-endpoint", help="S3 endpoint to upload to (default: the cluster's spec.storage.endpoint)")
    sm.add_argument("--no-follow", action="store_true", help="create the job and exit")
    sm.add_argument(
        "--timeout",
        type=_positive,
        default=0,
        metavar="S",
        help="stop following after S seconds, exit 1 (default: no limit)",
    )
    sm.add_argument("--interval", type=_positive, default=DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS)
    sm.set_defaults(func=cmd_submit)

    lg = sub.add_parser(
        "logs",
        parents=[common],
        help="a job's or cluster's Events and conditions",
        description="The operator's account of a TranslationJob or TranslationCluster: its conditions and its Events, "
        "oldest first. With --follow, new Events and condition changes are printed as they happen, until the job "
        "ends (or Ctrl-C).",
    )
    lg.add_argument("target", metavar="JOB_OR_CLUSTER", help="NAME (a job, else a cluster), tj/NAME or tc/NAME")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new Events until the job ends")
    lg.add_argument("--timeout", type=_positive, default=0, metavar="S", help="stop following after S seconds")
    lg.add_argument("--interval", type=_positive, default=DEFAULT_POLL_SECONDS, help=argparse.SUPPRESS)
    lg.set_defaults(func=cmd_logs)

    co = sub.add_parser(
        "cost",
        parents=[common],
        help="spend by cluster, tenant and job",
        description="Spend in the current day, week or month: per cluster and tenant from the clusters' "
        "status.budget, and per job (jobs active in the window, with their whole spend) from status.cost. "
        "Spend the operator has not recorded yet shows as 0.00, a missing limit as -.",
    )
    _all_namespaces(co)
    co.add_argument("--window", choices=list(WINDOWS), default="day", help="day (default), week or month")
    co.add_argument("-o", "--output", choices=["table", "json"], default="table", help="table (default) or json")
    co.set_defaults(func=cmd_cost)

    rn = sub.add_parser(
        "release-node",
        parents=[common],
        help="release a GPU node Portalis quarantined",
        description=f"Release a node Portalis quarantined for GPU errors, once it is repaired: sets the annotation "
        f"{RELEASE_ANNOTATION}=true on it, and the operator then removes its {UNHEALTHY_TAINT} taint, labels and "
        "annotations and uncordons it. Refuses a node without that taint.",
    )
    rn.add_argument("node", metavar="NODE")
    rn.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rn.set_defaults(func=cmd_release_node)
    return parser


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    """Case-insensitive choice that returns the canonical spelling."""
    by_lower = {o.lower(): o for o in options}

    def parse(text: str) -> str:
        try:
            return by_lower[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(options)}") from None

    return parse


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        rc: int = args.func(args, stream)
    except PluginError as exc:
        stream.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
