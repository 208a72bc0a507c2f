"""A real OCI registry for tests and benchmarks: Debian's ``docker-registry`` (CNCF
Distribution), on a free 127.0.0.1 port, with its storage in a directory the caller owns.

Started and stopped by PID (never by name: other registries may be running). Optionally with
htpasswd auth (bcrypt, low cost so that tests stay fast). research/oci-sigstore.md §1 has the
behaviour this relies on: blobs live at ``…/blobs/sha256/<hh>/<hex>/data`` and are served
without being re-hashed, so a test can tamper with one.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
START_TIMEOUT_S = 10.0


def available() -> bool:
    return Path(REGISTRY_BINARY).exists()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RegistryServer:
    root: Path
    port: int
    users: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def blob_path(self, digest: str) -> Path:
        hexdigest = digest.removeprefix("sha256:")
        return (self.root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256"
                / hexdigest[:2] / hexdigest / "data")

    def _config(self) -> Path:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "storage")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.users:
            lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}"
                     for user, pw in self.users.items()]
            htpasswd = self.root / "htpasswd"
            htpasswd.write_text("\n".join(lines) + "\n")
            config["auth"] = {"htpasswd": {"realm": "secprof-test", "path": str(htpasswd)}}
        path = self.root / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def start(self) -> RegistryServer:
        """Start (or restart, on the same port and storage) and wait until it answers."""
        config = self._config()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return self
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # auth enabled: it is up
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop the process this object started (by its PID) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_registry(root: Path, *, users: Mapping[str, str] | None = None) -> RegistryServer:
    """A started registry storing under ``root`` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    return RegistryServer(root=root, port=free_port(), users=dict(users or {})).start()
