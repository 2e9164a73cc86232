"""`kea dashboard`: start Streamlit on the dashboard app for one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.errors import KeaError
from pipeline.query import resolve_db_path

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
    """The store to show; a missing file is a KeaError naming the fix."""
    path = resolve_db_path(db).resolve()
    if not path.is_file():
        raise KeaError(f"database {path} does not exist: run `kea crawl` first, or pass --db PATH")
    return path


def launch(db: str | None, port: int = 8501, host: str = "localhost") -> int:
    """Run the dashboard until it is stopped; returns Streamlit's exit code."""
    path = resolve_db(db)
    shown = "localhost" if host in ("localhost", "127.0.0.1", "0.0.0.0", "::") else host
    print(f"Dashboard: http://{shown}:{port}", flush=True)
    env = {**os.environ, "KEA_DB": str(path)}
    try:
        return subprocess.call(streamlit_command(path, port, host), env=env)
    except KeyboardInterrupt:
        return 0
