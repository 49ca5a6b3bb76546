"""A static file server on 127.0.0.1 for the duration of a run, so that embedded pools are
ingested through the real URL download path.

The server is a separate process (Python's http.server), so it never competes with the run for
the interpreter lock, and it is tied to this process: it stops when the run ends or dies.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

from curate.errors import ConfigError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the parent exits, even by SIGKILL (Linux)."""
    with suppress(OSError):  # no prctl (not Linux): the server still stops when a run ends normally
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


@contextmanager
def serve_folder(root: Path, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `root` over HTTP on host:port (0: any free port); yields the base URL."""
    if not Path(root).is_dir():
        raise ConfigError(f"serve.root {root} is not a folder; build the pool first (curate pools build)")
    port = port or free_port(host)
    if _port_in_use(host, port):
        raise ConfigError(f"cannot serve {root}: {host}:{port} is in use; free the port (a pool's URL lists "
                          f"name it: to use another, rebuild the pool with --base-url and set serve.port)")
    command = [sys.executable, "-m", "http.server", str(port), "--bind", host, "--directory", str(root)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=_die_with_parent)
    try:
        _wait_until_listening(server, host, port)
        yield f"http://{host}:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_listening(server: subprocess.Popen, host: str, port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not _port_in_use(host, port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise ConfigError(f"the file server on {host}:{port} did not start")
        time.sleep(0.05)
