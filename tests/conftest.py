"""Shared test fixtures: the captured AdmissionReviews, the example config, a real server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_harness import RunningServer, running_server, runtime_for

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "examples" / "config.yaml"
SHARED = Path(os.environ.get("TENANT_GUARD_SHARED", ROOT.parent / "shared"))
ADMISSION_FIXTURES = SHARED / "fixtures" / "admission"


def load_fixture(name: str, mutating: bool = False) -> dict[str, Any]:
    """A captured AdmissionReview body, as the API server sent it."""
    path = ADMISSION_FIXTURES / ("mutating" if mutating else "") / name
    if not path.exists():
        pytest.skip(
            f"captured fixtures not found at {ADMISSION_FIXTURES} (set TENANT_GUARD_SHARED)"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """tenant-guard serving the example config over real TLS on 127.0.0.1."""
    with running_server(runtime_for(EXAMPLE_CONFIG), tmp_path_factory.mktemp("certs")) as running:
        yield running
