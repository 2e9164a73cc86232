"""Docs are tested: every subcommand is in the README, and each help ends with an example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from kea.cli import COMMANDS, build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_is_documented(command: str) -> None:
    assert f"kea {command}" in README


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_ends_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.splitlines()[-1].startswith(f"example: kea {command}")


def test_readme_examples_parse() -> None:
    """Each `kea ...` line of the README's example block is a valid command line."""
    block = README.split("Examples:", 1)[1].split("```", 2)[1]
    lines = [ln for ln in block.splitlines() if ln.startswith("kea ")]
    assert len(lines) >= 6
    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])
        assert args.command in COMMANDS


def test_make_targets_documented() -> None:
    assert "make run" in README and "make test" in README
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    for target in ("run", "test", "install", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M)
