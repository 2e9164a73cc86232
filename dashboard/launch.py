"""`kea dashboard`: start Streamlit on the dashboard app for one store."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
import urllib.request
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
        "--client.disableDataExport",  # see app.py: the first session too, from its start
        "true",
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


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("localhost", "0.0.0.0", "::", "") else host


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    """True once Streamlit answers its health check; False if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def warm_up(base: str, timeout: float = 120) -> float:
    """Run the first page once through Streamlit's own websocket, as a browser does.

    The first visitor then finds the page's imports (pandas, pyarrow) loaded and the
    Overview's queries cached instead of paying ~1-2 s for them. Returns the seconds
    it took; raises OSError (or a websockets error) when the server does not answer.
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect as ws_connect

    started = time.perf_counter()
    url = base.replace("http", "ws", 1) + "/_stcore/stream"
    with ws_connect(url, open_timeout=10, max_size=None) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        ws.send(msg.SerializeToString())
        while time.perf_counter() - started < timeout:
            fwd = ForwardMsg()
            fwd.ParseFromString(ws.recv(timeout=timeout))
            if fwd.WhichOneof("type") == "script_finished":
                break
    return time.perf_counter() - started


def launch(db: str | None, port: int = 8501, host: str = "localhost") -> int:
    """Run the dashboard until it is stopped; returns Streamlit's exit code."""
    path = resolve_db(db)
    check_port(host, port)
    shown = "localhost" if host in ("localhost", "127.0.0.1", "0.0.0.0", "::") else host
    print(f"Dashboard: http://{shown}:{port}", flush=True)
    env = {**os.environ, "KEA_DB": str(path)}
    proc = subprocess.Popen(streamlit_command(path, port, host), env=env)
    try:
        base = f"http://{_local(host)}:{port}"
        if wait_healthy(base, proc):
            try:
                took = warm_up(base)
                print(f"Dashboard ready (first page prepared in {took:.1f} s)", flush=True)
            except Exception as err:  # a warm-up is an optimisation, never a failure
                print(f"Dashboard ready (warm-up skipped: {err})", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 0
