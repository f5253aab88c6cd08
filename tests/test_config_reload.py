"""Config reload: a good new file is swapped in, a bad one keeps the last good config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG, load_fixture, swap
from tests.server_harness import running_server
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime


def test_unchanged_file_is_not_reloaded(config_file: Path) -> None:
    store = ConfigStore(config_file)
    assert store.check_once() is False
    assert store.reloads == 0


def test_good_change_is_swapped_in(config_file: Path) -> None:
    store = ConfigStore(config_file)
    first = store.current
    swap(config_file, config_file.read_text().replace("enforcement: enforce", "enforcement: warn"))
    assert store.check_once() is True
    assert store.current is not first
    assert store.current.enforcement.value == "warn"
    assert (store.reloads, store.failures, store.last_error) == (1, 0, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("enforcement: maybe\n", "enforcement", id="bad-value"),
        pytest.param("tenants: [\n", "not valid YAML", id="bad-yaml"),
        pytest.param("proxyDefaults: {cpu: lots}\n", "proxyDefaults.cpu", id="bad-quantity"),
        pytest.param("surprise: 1\n", "unknown key", id="unknown-key"),
    ],
)
def test_bad_change_keeps_the_last_good_config(config_file: Path, text: str, expected: str) -> None:
    store = ConfigStore(config_file)
    good = store.current
    swap(config_file, text)
    assert store.check_once() is False
    assert store.current is good
    assert store.failures == 1
    assert store.last_error is not None and expected in store.last_error
    # The same bad file is not re-reported on every poll; a fix is picked up.
    assert store.check_once() is False and store.failures == 1
    swap(config_file, EXAMPLE_CONFIG.read_text())
    assert store.check_once() is True and store.last_error is None


def test_reload_through_the_server(config_file: Path, tmp_path: Path) -> None:
    store = ConfigStore(config_file)
    with running_server(Runtime(store), tmp_path / "certs") as server, server.client() as client:
        review = load_fixture("virtualservice-create-v1alpha3-cross-tenant-host.json")
        assert client.post("/validate", json=review).json()["response"]["allowed"] is False

        swap(
            config_file,
            config_file.read_text().replace("tenant-b: {tenant: tenant-b}", "tenant-b: {}"),
        )
        assert store.check_once()
        # tenant-b is now a platform namespace in the offline map: untouched.
        assert client.post("/validate", json=review).json()["response"]["allowed"] is True

        swap(config_file, "tenants: {broken")
        store.check_once()
        ready = client.get("/readyz").json()
        metrics = client.get("/metrics").text
    assert ready["ready"] is True
    assert "config reload refused, last good config in use" in ready["detail"][0]
    assert 'tenant_guard_config_reloads_total{result="success"} 1.0' in metrics
    assert 'tenant_guard_config_reloads_total{result="failure"} 1.0' in metrics
