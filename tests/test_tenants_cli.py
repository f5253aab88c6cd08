"""Tenant objects at the command line (SPEC.md §12): `analyze` reads the input's Tenants (a
GitOps repository's onboarding directories), and `tenants export` turns a config's tenants
into Tenant objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.builders import EXAMPLE_CONFIG, config_data
from tests.test_analyze import records, vs, write
from webhook.config.model import parse_config
from webhook.tenancy.tenants import read_tenant


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def namespace(name: str, tenant_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"tenant": tenant_name}},
    }


def test_an_onboarding_directory_is_judged_with_its_tenants_claims(tmp_path: Path) -> None:
    # tenants/shop/: the Namespace and the Tenant, as the README's ApplicationSet layout has it.
    write(tmp_path / "tenants" / "shop" / "tenant.yaml", tenant("shop", hosts=["shop.example.net"]))
    write(tmp_path / "tenants" / "shop" / "namespace.yaml", namespace("shop", "shop"))
    write(tmp_path / "apps" / "vs.yaml", vs("shop", "web", ["shop.example.net"], exportTo=["."]))
    write(tmp_path / "apps" / "grab.yaml", vs("tenant-b", "grab", ["shop.example.net"]))
    code, objects = records("--as-group", "system:masters", tmp_path)
    by_name = {o["name"]: o for o in objects}
    assert by_name["shop"]["status"] == "allowed"  # the Tenant and the Namespace
    assert by_name["web"]["status"] == "allowed"
    assert by_name["grab"]["status"] == "denied"
    assert (
        'spec.hosts[0] "shop.example.net" belongs to tenant "shop" (claimed by Tenant "shop")'
        in by_name["grab"]["message"]
    )
    assert code == 1


def test_a_tenant_claiming_another_tenants_host_is_denied_in_analyze(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", tenant("shop", hosts=["shop.example.com"]))
    code, objects = records(tmp_path)
    (obj,) = objects
    assert code == 1 and obj["status"] == "denied"
    assert 'is already claimed by tenant "tenant-a" (in the tenant-guard config)' in obj["message"]


def test_two_input_tenants_for_one_host_leave_one_holder(tmp_path: Path) -> None:
    write(
        tmp_path / "t.yaml",
        tenant("alpha", hosts=["both.example.net"]),
        tenant("beta", hosts=["both.example.net"]),
    )
    code, objects = records(tmp_path)
    statuses = {o["name"]: o["status"] for o in objects}
    assert statuses == {"alpha": "allowed", "beta": "denied"} and code == 1


def test_export_prints_the_config_tenants_as_tenant_objects() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "tenants", "export", "--config", str(EXAMPLE_CONFIG)],
        capture_output=True,
        text=True,
        check=True,
    )
    objects = list(yaml.safe_load_all(result.stdout))
    config = parse_config(yaml.safe_load(EXAMPLE_CONFIG.read_text()))
    assert [o["metadata"]["name"] for o in objects] == sorted(config.tenants)
    for obj in objects:
        name = obj["metadata"]["name"]
        assert obj["apiVersion"] == "tenant-guard.io/v1alpha1" and obj["kind"] == "Tenant"
        record = read_tenant(obj, config)
        assert record.problems == ()
        assert record.entry is not None
        assert record.entry.hosts == tuple(dict.fromkeys(config.tenants[name].hosts))
        assert dict(record.entry.proxy) == config.tenants[name].proxy.by_config_key()


def test_export_writes_one_directory_per_tenant_and_names_what_it_cannot_export(
    tmp_path: Path,
) -> None:
    data = config_data()
    data["tenants"]["Team_A"] = {"hosts": ["team.example.net"]}
    data["tenants"]["dup"] = {"hosts": ["Dup.example.net", "dup.example.net."]}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "tenants"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook",
            "tenants",
            "export",
            "--config",
            str(config),
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "tenants.Team_A: 'Team_A' is a valid label value but not a Kubernetes object name" in (
        result.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == ["dup", "tenant-a", "tenant-b", "tenant-c"]
    dup = yaml.safe_load((out / "dup" / "tenant.yaml").read_text())
    assert dup["spec"]["hosts"] == ["dup.example.net"]  # normalised, once


def test_export_of_a_bad_config_fails_like_check(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("tenants: {a: {hosts: ['*']}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "tenants", "export", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "cannot be claimed" in result.stderr
    assert result.stdout == ""
