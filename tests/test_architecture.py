"""The architecture's rules that import-linter cannot see: a pure core never reads the clock.

import-linter (pyproject.toml) keeps the pure cores away from `time` and every I/O library;
`datetime` they may use for types and arithmetic, but `datetime.now()` would make a decision
depend on when it runs. The modules checked are the ones that contract names, so the two
lists cannot drift apart.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PURE_CONTRACT = "Each feature's pure core imports no I/O library, no clock, no server and no"
CLOCK_READS = {"now", "utcnow", "today"}


def pure_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["name"].startswith(PURE_CONTRACT):
            return list(contract["source_modules"])
    raise AssertionError("the pure-core contract is gone from pyproject.toml")


def sources(module: str) -> list[Path]:
    path = REPO / Path(*module.split("."))
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def clock_reads(path: Path, root: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_READS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("datetime", "date")
        ):
            found.append(
                f"{path.relative_to(root)}:{node.lineno}: {node.func.value.id}.{node.func.attr}()"
            )
    return found


@pytest.mark.parametrize("module", pure_modules())
def test_a_pure_core_never_reads_the_clock(module: str) -> None:
    files = sources(module)
    assert files and all(f.exists() for f in files), f"{module} names no source file"
    assert [read for f in files for read in clock_reads(f)] == []


def test_the_check_finds_a_clock_read(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from datetime import datetime\n\nSTAMP = datetime.now(tz=None)\n")
    assert clock_reads(probe, tmp_path) == ["probe.py:3: datetime.now()"]
