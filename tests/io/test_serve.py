"""The run's file server: serves a folder on 127.0.0.1, refuses a busy port, dies with its run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from curate import ConfigError
from curate.io.serve import free_port, serve_folder


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_serves_the_folder_and_stops_after(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello")
    with serve_folder(tmp_path) as base:
        assert urllib.request.urlopen(f"{base}/a.txt", timeout=5).read() == b"hello"
        port = int(base.rsplit(":", 1)[1])
    assert not _listening(port)


def test_a_busy_port_or_missing_folder_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match="is in use"):
            with serve_folder(tmp_path, busy.getsockname()[1]):
                pass
    with pytest.raises(ConfigError, match="build the pool first"):
        with serve_folder(tmp_path / "nope"):
            pass


def test_the_server_dies_with_a_killed_run(tmp_path):
    port = free_port()
    script = (f"import time; from curate.io.serve import serve_folder\n"
              f"with serve_folder({str(tmp_path)!r}, {port}):\n    print('up', flush=True); time.sleep(60)")
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert run.stdout.readline().strip() == b"up" and _listening(port)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(port)
