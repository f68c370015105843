"""Single-layer OCI images of static binaries (the pause binary, CoreDNS), written as an OCI image-layout archive
that ``ctr images import`` takes; no image builder needed.

The archive is reproducible: the same files give the same digests, so an image already in the node's containerd is
recognised and not imported again.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
CREATED = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class ImageFile:
    path: str  # inside the image, without the leading slash
    data: bytes
    mode: int = 0o755


@dataclass(frozen=True)
class ScratchImage:
    """An image with one layer of the given files and nothing else."""

    ref: str  # e.g. localhost/portalis/pause:3.10.1
    files: tuple[ImageFile, ...]
    entrypoint: tuple[str, ...]
    args: tuple[str, ...] = ()
    user: str = ""
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


def _tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, size: int = 0, mode: int = 0o644, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.type = kind
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _layer(files: tuple[ImageFile, ...]) -> bytes:
    dirs: set[str] = set()
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for f in sorted(files, key=lambda f: f.path):
        parts = f.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entries.append((_info(d + "/", mode=0o755, kind=tarfile.DIRTYPE), None))
        entries.append((_info(f.path, len(f.data), f.mode), f.data))
    return _tar_bytes(entries)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_archive(image: ScratchImage, out: Path) -> str:
    """Write ``image`` as an OCI image-layout tar at ``out``; returns the manifest digest."""
    layer = _layer(image.files)
    config: dict[str, object] = {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(image.entrypoint),
            **({"Cmd": list(image.args)} if image.args else {}),
            **({"User": image.user} if image.user else {}),
            **({"Env": list(image.env)} if image.env else {}),
            **({"Labels": dict(image.labels)} if image.labels else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        "history": [{"created": CREATED, "created_by": "portalis devcluster (static binary)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": _digest(layer), "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    tag = image.ref.rsplit(":", 1)[1] if ":" in image.ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": _digest(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {"io.containerd.image.name": image.ref, "org.opencontainers.image.ref.name": tag},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    blobs = [layer, config_bytes, manifest_bytes]
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (_info("blobs/", mode=0o755, kind=tarfile.DIRTYPE), None),
        (_info("blobs/sha256/", mode=0o755, kind=tarfile.DIRTYPE), None),
    ]
    for blob in blobs:
        entries.append((_info("blobs/sha256/" + _digest(blob).split(":")[1], len(blob)), blob))
    layout = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
    index_bytes = json.dumps(index, sort_keys=True).encode()
    entries += [(_info("oci-layout", len(layout)), layout), (_info("index.json", len(index_bytes)), index_bytes)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(_tar_bytes(entries))
    tmp.replace(out)
    return _digest(manifest_bytes)
