"""A stand-in for NVIDIA's dcgm-exporter: GPU metrics of fake nodes in the Prometheus text format.

For tests, benchmarks and the demo: it serves ``GET /metrics`` on a loopback port with the series dcgm-exporter
exports for each GPU (the same names and labels: ``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname``,
``pci_bus_id``), and lets a test raise the error counters of one GPU (``bump_dbe``, ``bump_sbe``, ``set_xid``,
``set_retired_pending``) to make Prometheus fire the chart's GPU alerts. Real dcgm-exporter ships the ECC
counters disabled (see docs/runbooks/gpu-ecc.md for the collectors file that turns them on); this stand-in
always exports them.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from typing_extensions import override

from portalis_devcluster.cluster import free_port

MODELS = {
    "NVIDIA-H100-80GB-HBM3": "NVIDIA H100 80GB HBM3",
    "NVIDIA-A100-SXM4-80GB": "NVIDIA A100-SXM4-80GB",
}
DEFAULT_MODEL = "NVIDIA H100 80GB HBM3"
DRIVER_VERSION = "550.54.15"

# name, type, help: what dcgm-exporter's default and ECC collectors export
SERIES: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
    ("DCGM_FI_DEV_RETIRED_PENDING", "gauge", "Total number of pages pending retirement."),
)


def gpu_uuid(node: str, gpu: int) -> str:
    digest = hashlib.sha1(f"{node}/{gpu}".encode()).hexdigest()
    return f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


@dataclass
class Gpu:
    node: str
    index: int
    model: str = DEFAULT_MODEL
    values: dict[str, float] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return gpu_uuid(self.node, self.index)

    def labels(self) -> str:
        pairs = {
            "gpu": str(self.index),
            "UUID": self.uuid,
            "pci_bus_id": f"00000000:{0x18 + self.index * 0x10:02X}:00.0",
            "device": f"nvidia{self.index}",
            "modelName": self.model,
            "Hostname": self.node,
            "DCGM_FI_DRIVER_VERSION": DRIVER_VERSION,
        }
        return ",".join(f'{k}="{v}"' for k, v in pairs.items())


class FakeDcgmExporter:
    """``GET /metrics`` for every GPU of the nodes added; thread-safe."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self._gpus: dict[tuple[str, int], Gpu] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.scrapes = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- the fleet ----
    def add_node(self, node: str, gpus: int = 8, product: str | None = None) -> None:
        model = MODELS.get(product or "", product or DEFAULT_MODEL)
        with self._lock:
            for i in range(gpus):
                self._gpus[(node, i)] = Gpu(node, i, model)

    def remove_node(self, node: str) -> None:
        with self._lock:
            for key in [k for k in self._gpus if k[0] == node]:
                del self._gpus[key]

    def nodes(self) -> list[str]:
        with self._lock:
            return sorted({n for n, _ in self._gpus})

    def _add(self, node: str, gpu: int, name: str, delta: float) -> float:
        with self._lock:
            g = self._gpus[(node, gpu)]
            g.values[name] = g.values.get(name, 0.0) + delta
            return g.values[name]

    def _set(self, node: str, gpu: int, name: str, value: float) -> None:
        with self._lock:
            self._gpus[(node, gpu)].values[name] = value

    def bump_dbe(self, node: str, gpu: int = 0, errors: int = 1) -> float:
        """Count new uncorrectable (double-bit) ECC errors on one GPU; returns the new total."""
        return self._add(node, gpu, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", errors)

    def bump_sbe(self, node: str, gpu: int = 0, errors: int = 1) -> float:
        return self._add(node, gpu, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", errors)

    def set_xid(self, node: str, gpu: int, xid: int) -> None:
        self._set(node, gpu, "DCGM_FI_DEV_XID_ERRORS", xid)

    def set_retired_pending(self, node: str, gpu: int, pages: int) -> None:
        self._set(node, gpu, "DCGM_FI_DEV_RETIRED_PENDING", pages)

    def uuid(self, node: str, gpu: int = 0) -> str:
        return gpu_uuid(node, gpu)

    # ---- the exposition ----
    def render(self) -> str:
        with self._lock:
            gpus = sorted(self._gpus.values(), key=lambda g: (g.node, g.index))
            lines: list[str] = []
            for name, kind, help_text in SERIES:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                for g in gpus:
                    value = g.values.get(name, 0.0)
                    lines.append(f"{name}{{{g.labels()}}} {value:g}")
        return "\n".join(lines) + "\n"

    def start(self) -> FakeDcgmExporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            @override
            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-dcgm-exporter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
