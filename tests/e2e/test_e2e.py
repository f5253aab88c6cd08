"""End to end against a real control plane (envtest convention): kube-apiserver + etcd from
KUBEBUILDER_ASSETS, the Istio CRDs, tenant-guard's own webhook configurations, and kubectl."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.builders import shared_dir
from webhook.tls import generate_bundle, write_bundle

ROOT = Path(__file__).resolve().parents[2]
SHARED = shared_dir()
ASSETS = os.environ.get("KUBEBUILDER_ASSETS", "")


def _why_skipped() -> str | None:
    if not ASSETS:
        return (
            "KUBEBUILDER_ASSETS is not set: the e2e suite needs a directory with "
            "kube-apiserver and etcd binaries (see README: Running the e2e suite)"
        )
    missing = [b for b in ("kube-apiserver", "etcd") if not (Path(ASSETS) / b).exists()]
    if missing:
        return f"KUBEBUILDER_ASSETS={ASSETS} lacks {', '.join(missing)}"
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    if not (SHARED / "fixtures" / "crds" / "istio-networking-crds.yaml").exists():
        return f"Istio CRDs not found under {SHARED} (set TENANT_GUARD_SHARED)"
    return None


pytestmark = [pytest.mark.e2e]
if (_reason := _why_skipped()) is not None:
    pytestmark.append(pytest.mark.skip(reason=_reason))

CONFIG = {
    "tenantLabel": "tenant",
    "enforcement": "enforce",
    "unclaimedHosts": "allow",
    "sharedGateways": ["istio-system/public-gateway"],
    "labelAdmins": {"groups": ["system:masters"]},
    "proxyDefaults": {"cpu": "100m", "cpuLimit": "500m", "memory": "128Mi", "memoryLimit": "256Mi"},
    "tenants": {
        "tenant-a": {"hosts": ["a.example.com", "*.a.example.com"]},
        "tenant-b": {"hosts": ["shop.example.org"]},
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


@dataclass
class Cluster:
    kubeconfig: Path
    workdir: Path

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(
        self, manifest: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", *extra, stdin=manifest, check=check)


def _start(cmd: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("e2e")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        etcd_port, peer_port, api_port, hook_port = (free_port() for _ in range(4))
        processes.append(
            _start(
                [
                    str(Path(ASSETS) / "etcd"),
                    "--data-dir",
                    str(work / "etcd"),
                    "--listen-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--advertise-client-urls",
                    f"http://127.0.0.1:{etcd_port}",
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                ],
                work / "etcd.log",
            )
        )

        # The API server's own serving cert, service-account key and an admin token.
        write_bundle(generate_bundle("kubernetes", "default"), work / "apiserver")
        token = "e2e-admin-token"
        (work / "tokens.csv").write_text(f'{token},e2e-admin,e2e-admin,"system:masters"\n')
        processes.append(
            _start(
                [
                    str(Path(ASSETS) / "kube-apiserver"),
                    "--etcd-servers",
                    f"http://127.0.0.1:{etcd_port}",
                    "--bind-address",
                    "127.0.0.1",
                    "--advertise-address",
                    "127.0.0.1",
                    "--secure-port",
                    str(api_port),
                    "--tls-cert-file",
                    str(work / "apiserver" / "tls.crt"),
                    "--tls-private-key-file",
                    str(work / "apiserver" / "tls.key"),
                    "--token-auth-file",
                    str(work / "tokens.csv"),
                    "--authorization-mode",
                    "RBAC",
                    "--service-account-issuer",
                    "https://kubernetes.default.svc",
                    "--service-account-key-file",
                    str(work / "apiserver" / "tls.key"),
                    "--service-account-signing-key-file",
                    str(work / "apiserver" / "tls.key"),
                    "--service-cluster-ip-range",
                    "10.0.0.0/24",
                ],
                work / "apiserver.log",
            )
        )

        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "e2e",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": f"https://127.0.0.1:{api_port}",
                                "certificate-authority": str(work / "apiserver" / "ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": token}}],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
                }
            )
        )
        cluster = Cluster(kubeconfig, work)
        wait_for(
            lambda: cluster.kubectl("get", "--raw", "/readyz").stdout == "ok",
            "kube-apiserver to be ready",
        )

        crds = SHARED / "fixtures" / "crds" / "istio-networking-crds.yaml"
        cluster.kubectl("apply", "-f", str(crds))
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/virtualservices.networking.istio.io",
        )

        # tenant-guard itself, reading the cluster through the same kubeconfig.
        config_file = work / "config.yaml"
        config_file.write_text(yaml.safe_dump(CONFIG))
        write_bundle(generate_bundle("tenant-guard", "tenant-guard"), work / "hook")
        processes.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "webhook",
                    "serve",
                    "--config",
                    str(config_file),
                    "--cert-dir",
                    str(work / "hook"),
                    "--port",
                    str(hook_port),
                    "--kubeconfig",
                    str(kubeconfig),
                ],
                work / "tenant-guard.log",
                cwd=ROOT,
            )
        )
        context = ssl.create_default_context(cafile=str(work / "hook" / "ca.crt"))
        wait_for(
            lambda: (
                httpx.get(f"https://127.0.0.1:{hook_port}/readyz", verify=context).status_code
                == 200
            ),
            "tenant-guard to be ready",
        )

        cluster.apply(_webhook_configurations(hook_port, work / "hook" / "ca.crt"))
        for name, tenant in (("tenant-a", "tenant-a"), ("tenant-b", "tenant-b")):
            cluster.apply(_namespace(name, tenant))
            # No controller-manager here: the ServiceAccount admission plugin needs this.
            cluster.kubectl("-n", name, "create", "serviceaccount", "default")
        yield cluster
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _webhook_configurations(port: int, ca_file: Path) -> str:
    """The shipped configurations from deploy/, pointed at the local server."""
    import base64

    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "base")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ca_bundle = base64.b64encode(ca_file.read_bytes()).decode()
    docs = []
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"] in (
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ):
            for hook in doc["webhooks"]:
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {
                    "url": f"https://127.0.0.1:{port}{path}",
                    "caBundle": ca_bundle,
                }
            docs.append(doc)
    assert len(docs) == 2, "deploy/base must render both webhook configurations"
    return yaml.safe_dump_all(docs)


def _namespace(name: str, tenant: str | None) -> str:
    labels = {"tenant": tenant} if tenant else {}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )


def _virtualservice(namespace: str, name: str, hosts: list[str], **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "hosts": hosts,
                "http": [{"route": [{"destination": {"host": hosts[0]}}]}],
                **spec,
            },
        }
    )


def test_cross_tenant_virtualservice_is_denied_with_the_message(cluster: Cluster) -> None:
    manifest = _virtualservice("tenant-b", "hijack", ["reviews.tenant-a.svc.cluster.local"])
    for extra in ((), ("--dry-run=server",)):
        result = cluster.apply(manifest, *extra, check=False)
        assert result.returncode == 1
        assert "Error from server (Forbidden)" in result.stderr
        assert 'admission webhook "tenant-rules.tenant-guard.io" denied the request' in (
            result.stderr
        )
        assert (
            "VirtualService tenant-b/hijack: spec.hosts[0] "
            '"reviews.tenant-a.svc.cluster.local" belongs to tenant "tenant-a"' in result.stderr
        )


def test_allowed_virtualservice_is_created_with_a_local_export(cluster: Cluster) -> None:
    cluster.apply(_virtualservice("tenant-a", "reviews", ["reviews", "www.a.example.com"]))
    export_to = cluster.kubectl(
        "-n", "tenant-a", "get", "virtualservice", "reviews", "-o", "jsonpath={.spec.exportTo}"
    ).stdout
    assert export_to == '["."]'  # filled by the mutating webhook


def test_pod_gets_its_tenant_label_and_sidecar_bounds(cluster: Cluster) -> None:
    cluster.kubectl(
        "-n",
        "tenant-a",
        "run",
        "web",
        "--image=nginx:1.25",
        "--restart=Never",
        "--annotations=sidecar.istio.io/proxyCPULimit=4",
    )
    pod = yaml.safe_load(
        cluster.kubectl("-n", "tenant-a", "get", "pod", "web", "-o", "yaml").stdout
    )
    assert pod["metadata"]["labels"]["tenant"] == "tenant-a"
    annotations = pod["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPULimit"] == "500m"  # clamped from 4
    assert annotations["sidecar.istio.io/proxyMemoryLimit"] == "256Mi"


def test_namespace_and_virtualservice_in_one_apply_are_judged_correctly(
    cluster: Cluster,
) -> None:
    manifest = (
        _namespace("tenant-b-new", "tenant-b")
        + "---\n"
        + _virtualservice("tenant-b-new", "hijack", ["www.a.example.com"])
    )
    result = cluster.apply(manifest, check=False)
    assert result.returncode == 1
    assert "namespace/tenant-b-new created" in result.stdout
    assert 'belongs to tenant "tenant-a"' in result.stderr
    own = _virtualservice("tenant-b-new", "shop", ["shop.example.org"])
    cluster.apply(own)


def test_collision_with_another_tenants_virtualservice_is_denied(cluster: Cluster) -> None:
    cluster.apply(_virtualservice("tenant-a", "partner", ["api.partner.example"]))
    manifest = _virtualservice("tenant-b", "partner", ["api.partner.example"])

    def denied() -> bool:
        result = cluster.apply(manifest, "--dry-run=server", check=False)
        return result.returncode == 1 and "already routed by VirtualService tenant-a/partner" in (
            result.stderr
        )

    wait_for(denied, "the VirtualService watch to see tenant-a/partner", timeout=15)


def test_tenant_label_change_by_a_tenant_user_is_denied(cluster: Cluster) -> None:
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "e2e-tenant-edit",
        "--clusterrole=cluster-admin",
        "--user=alice",
    )
    result = cluster.kubectl(
        "--as=alice",
        "label",
        "namespace",
        "tenant-b",
        "tenant=tenant-a",
        "--overwrite",
        check=False,
    )
    assert result.returncode == 1
    assert 'admission webhook "namespace-label.tenant-guard.io" denied the request' in (
        result.stderr
    )
