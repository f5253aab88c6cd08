"""The `tenant-guard` command: help, certs, check, review, and serve refusing a bad config."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import EXAMPLE_CONFIG, FIXTURES
from webhook.certificates.authority import certificate_sans
from webhook.server.cli import main


@pytest.mark.parametrize("command", ["serve", "certs", "check", "review"])
def test_every_command_says_what_it_does(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 5


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "--help"], capture_output=True, text=True, check=True
    )
    assert "tenant boundaries in a shared" in result.stdout
    for command in ("serve", "certs", "check", "review"):
        assert command in result.stdout


def test_certs_writes_a_ca_and_a_serving_certificate(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    assert (
        main(
            [
                "certs",
                "--out",
                str(out),
                "--service",
                "hook",
                "--namespace",
                "guard",
                "--dns",
                "hook.example.test",
                "--days",
                "30",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    for key in ("ca.key", "tls.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    sans = certificate_sans((out / "tls.crt").read_bytes())
    for name in (
        "hook",
        "hook.guard",
        "hook.guard.svc",
        "hook.guard.svc.cluster.local",
        "hook.example.test",
        "localhost",
        "127.0.0.1",
    ):
        assert name in sans


def test_check_accepts_the_example_and_names_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(EXAMPLE_CONFIG)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "config.yaml"
    bad.write_text("enforcement: sometimes\nproxyDefaults: {memory: lots}\n")
    assert main(["check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "enforcement" in err and "'sometimes'" in err
    assert "proxyDefaults.memory" in err and "'lots'" in err


def test_review_answers_offline_with_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    denied = FIXTURES / "virtualservice-create-v1alpha3-cross-tenant-host.json"
    assert main(["review", "--config", str(EXAMPLE_CONFIG), str(denied)]) == 3
    assert json.loads(capsys.readouterr().out)["response"]["allowed"] is False
    pod = FIXTURES / "mutating" / "pod-create-plain.json"
    assert main(["review", "--config", str(EXAMPLE_CONFIG), "--endpoint", "mutate", str(pod)]) == 0
    assert json.loads(capsys.readouterr().out)["response"]["patchType"] == "JSONPatch"


def test_serve_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("tenants: {a: {hosts: ['*']}}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--config",
            str(bad),
            "--dev-cert-dir",
            str(tmp_path / "certs"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot start, the config is invalid" in result.stderr
    assert "tenants.a.hosts[0]" in result.stderr
