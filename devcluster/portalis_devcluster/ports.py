"""Loopback ports of the local cluster's processes."""

from __future__ import annotations

import socket
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Ports:
    etcd_client: int = 0
    etcd_peer: int = 0
    apiserver: int = 0
    controller_manager: int = 0
    scheduler: int = 0
    kwok: int = 0
    kuberay_metrics: int = 0
    kuberay_probe: int = 0
    dask_operator: int = 0

    def fill_missing(self) -> None:
        """Give a port to components added since the state was written; running ones keep theirs."""
        for name in self.__dataclass_fields__:
            if not getattr(self, name):
                setattr(self, name, free_port())

    def allocate(self) -> None:
        for name in self.__dataclass_fields__:
            current = getattr(self, name)
            if not current or not port_free(current):
                setattr(self, name, free_port())
