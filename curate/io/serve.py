"""A static file server on 127.0.0.1 for the duration of a run, so that embedded pools are
ingested through the real URL download path."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from curate.errors import ConfigError


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to the terminal."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve_folder(root: Path, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `root` over HTTP on host:port (0: any free port); yields the base URL."""
    if not Path(root).is_dir():
        raise ConfigError(f"serve.root {root} is not a folder; build the pool first (curate pools build)")
    try:
        server = ThreadingHTTPServer((host, port), partial(_QuietHandler, directory=str(root)))
    except OSError as error:
        raise ConfigError(f"cannot serve {root} on {host}:{port} ({error}); free the port or change it") from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="curate-serve", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
