"""`kea dashboard`: start Streamlit on the dashboard app for one store."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

from pipeline.errors import KeaError
from pipeline.query import connect, resolve_db_path

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(db: Path, port: int, host: str) -> list[str]:
    """The `streamlit run` command line (pure, so tests can check it without starting a server)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--",
        "--db",
        str(db),
    ]


def resolve_db(db: str | None) -> Path:
    """The store to show; a missing file, or one that is not a kea store, is a KeaError
    naming the fix (opened read-only once, as the dashboard will)."""
    path = resolve_db_path(db).resolve()
    if not path.is_file():
        raise KeaError(f"database {path} does not exist: run `kea crawl` first, or pass --db PATH")
    connect(path).close()
    return path


def check_port(host: str, port: int) -> None:
    """Refuse a port outside 1-65535 or one another program listens on, before Streamlit
    starts (it would print its own error, or pick another port silently)."""
    if not 0 < port < 65536:
        raise KeaError(f"--port {port} is not a port number (1 to 65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise KeaError(f"--host {host!r}: cannot resolve it ({err.strerror or err})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(address)
        except OSError as err:
            reason = (
                "another program uses it; pick another with --port"
                if err.errno == errno.EADDRINUSE
                else err.strerror or str(err)
            )
            raise KeaError(f"cannot serve on {host}:{port}: {reason}") from None


def launch(db: str | None, port: int = 8501, host: str = "localhost") -> int:
    """Run the dashboard until it is stopped; returns Streamlit's exit code."""
    path = resolve_db(db)
    check_port(host, port)
    shown = "localhost" if host in ("localhost", "127.0.0.1", "0.0.0.0", "::") else host
    print(f"Dashboard: http://{shown}:{port}", flush=True)
    env = {**os.environ, "KEA_DB": str(path)}
    try:
        return subprocess.call(streamlit_command(path, port, host), env=env)
    except KeyboardInterrupt:
        return 0
