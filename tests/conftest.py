"""Shared fixtures. Tests that need ../shared fail (not skip) under CI=true when it is missing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KEA_SHARED", ROOT.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"{path} is missing: these tests run on the real samples in ../shared"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def samples_dir(shared_dir: Path) -> Path:
    return _need(shared_dir / "eutils-samples")


@pytest.fixture(scope="session")
def corpus_path(shared_dir: Path) -> Path:
    return _need(shared_dir / "corpus" / "dev.jsonl")


@pytest.fixture(scope="session")
def corpus(corpus_path: Path) -> list[dict]:
    return [json.loads(line) for line in corpus_path.read_text().splitlines() if line.strip()]


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    return tmp_path / "kea.sqlite"
