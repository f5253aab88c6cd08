"""The e2e suite's control plane: one per session, skipped with its reason when the binaries
are absent (envtest convention: KUBEBUILDER_ASSETS names a directory with kube-apiserver and
etcd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import crds
from tests.e2e.harness import Cluster, running_cluster, why_skipped

_E2E = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = why_skipped()
    for item in items:
        if _E2E in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which CRDs the control plane served, so a run's output tells what it proved."""
    if why_skipped() is None:
        terminalreporter.write_line(f"e2e control plane: {crds.source()}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd + kube-apiserver + every CRD + tenant-guard registered through deploy/base."""
    with running_cluster(tmp_path_factory.mktemp("e2e")) as running:
        yield running
