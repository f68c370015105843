"""``make bench [BENCH=name]``: run every benchmark, or one, each printing its JSON result line."""

from __future__ import annotations

import importlib
import signal
import sys
import time

BENCHES = {
    "apply-to-raycluster": "bench.apply_to_raycluster",
    "job-queue-latency": "bench.job_queue_latency",
    "queue-throughput": "bench.queue_throughput",
    "plan-throughput": "bench.plan_throughput",
    "scale-reaction": "bench.scale_reaction",
    "operator-recovery": "bench.operator_recovery",
    "fleet-scale": "bench.fleet_scale",
    "ecc-cordon": "bench.ecc_cordon",
    "ecc-drain": "bench.ecc_drain",
    "scale-up-real": "bench.scale_up_real",
    "worker-recovery": "bench.worker_recovery",
    "dataplane-throughput": "bench.dataplane_throughput",
    "translation-yield": "bench.translation_yield",
}


def main(argv: list[str]) -> int:
    # a SIGTERM (timeout, kill) unwinds like Ctrl-C, so each benchmark stops the servers and cluster it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        module = importlib.import_module(BENCHES[name])
        rc = int(module.main())
        print(f"=== {name}: {time.monotonic() - started:.0f}s ===", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"benchmarks that could not run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
