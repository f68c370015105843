"""``kubectl portalis``: Portalis clusters and jobs at a glance, using the kubeconfig as kubectl does."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence


def _kubectl(*args: str) -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("error: kubectl is not on PATH", file=sys.stderr)
        return 1
    return subprocess.call([kubectl, *args])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl portalis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="TranslationClusters and TranslationJobs")
    st.add_argument("-n", "--namespace")
    st.add_argument("-A", "--all-namespaces", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "status":
        scope = ["-A"] if args.all_namespaces else (["-n", args.namespace] if args.namespace else [])
        return _kubectl("get", "translationclusters,translationjobs", *scope)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
