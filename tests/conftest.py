"""Shared test fixtures: a real tenant-guard server over TLS with the example config."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import EXAMPLE_CONFIG
from tests.builders import load_review as load_fixture
from tests.server_harness import RunningServer, running_server, runtime_for

__all__ = ["EXAMPLE_CONFIG", "load_fixture", "swap"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """tenant-guard serving the example config over real TLS on 127.0.0.1, writing a decision
    log line per review as shipped (that code runs on every answer, so tests exercise it)."""
    decisions = logging.getLogger("tenant_guard.decisions")
    level = decisions.level
    decisions.setLevel(logging.INFO)
    try:
        with running_server(
            runtime_for(EXAMPLE_CONFIG), tmp_path_factory.mktemp("certs")
        ) as running:
            yield running
    finally:
        decisions.setLevel(level)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A copy of the example config in a directory of its own, for tests that change it."""
    path = tmp_path / "config" / "config.yaml"
    path.parent.mkdir()
    shutil.copy(EXAMPLE_CONFIG, path)
    return path


def swap(path: Path, text: str) -> None:
    """Replace the file the way a ConfigMap mount does: a new file renamed over the link."""
    staging = path.with_suffix(".new")
    staging.write_text(text)
    staging.replace(path)
