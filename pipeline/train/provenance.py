"""What a run records about where it came from: digests of its inputs, tool versions, host."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pipeline import __version__
from pipeline.io import file_sha256


def file_digest(path: str | Path | None) -> str | None:
    """`sha256:<hex>` of a file, or None when there is none or it cannot be read."""
    digest = file_sha256(path) if path else None
    return f"sha256:{digest}" if digest else None


def package_version(name: str) -> str | None:
    """An installed distribution's version (without importing it), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def darknet_version(binary: str) -> dict:
    """The darknet binary's path, digest and, where dpkg knows it, package version."""
    path = shutil.which(binary) or binary
    info: dict = {"binary": path, "digest": file_digest(path)}
    if shutil.which("dpkg-query") and path.startswith("/usr/"):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "darknet"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout:
                info["package"] = f"darknet {out.stdout.strip()} (Debian)"
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def provenance(argv: list[str]) -> dict:
    """Command line, versions of Python/torch/ultralytics/us, host and time."""
    return {
        "command": argv,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "versions": {"python": sys.version.split()[0], "yolo-pipeline": __version__,
                     "torch": package_version("torch"),
                     "ultralytics": package_version("ultralytics")},
    }
