"""A real control plane for the e2e suite (envtest convention): etcd and kube-apiserver from
KUBEBUILDER_ASSETS on 127.0.0.1, the CRDs of tests.crds (stand-ins, or published ones named
by TENANT_GUARD_CRDS), tenant-guard serving
against it with the webhook configurations rendered from deploy/, and kubectl to drive it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests import crds
from webhook.certificates.authority import generate_bundle, write_bundle

ROOT = Path(__file__).resolve().parents[2]
ASSETS = os.environ.get("KUBEBUILDER_ASSETS", "")

# The config tenant-guard starts with; tests that change it write the file and wait for reload.
CONFIG: dict[str, Any] = {
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
    # The edge (README: The rules: the edge)
    "sharedGatewayWorkloads": [{"istio": "ingressgateway", "app": "istio-ingressgateway"}],
    "sharedParentRefs": ["infra/shared-gateway"],
    "sharedNamespaces": ["istio-system"],
}


def why_skipped() -> str | None:
    """Why the e2e suite cannot run here, or None when it can."""
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
    published = crds.published_directory()
    if published is not None and not any(published.glob("*.yaml")):
        return f"{crds.CRDS_ENV}={published} holds no *.yaml CRD files"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
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


class PollingThread:
    """Calls `poll` again and again on a daemon thread while a `with` block runs, `pause`
    seconds apart; leaving the block stops the loop and waits (up to 30 s) for the call under
    way. A subclass says what one call sends and how it records the answer."""

    pause: ClassVar[float] = 0.0

    def poll(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.pause)


def start_process(cmd: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, **kwargs)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    """(public key file, private key file) for signing service-account tokens.

    The API server wants public keys in --service-account-key-file; the serving certificate's
    private key is not one, and giving it that file makes the server refuse to start.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public, private


@dataclass
class ControlPlane:
    """etcd + kube-apiserver on loopback; restartable, with an admin kubeconfig."""

    workdir: Path
    etcd_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    token: str = "e2e-admin-token"
    user: str = "e2e-admin"  # who the admin token authenticates as, in system:masters
    user_uid: str = "e2e-admin"  # empty: no uid in userInfo, as with a client certificate
    etcd: subprocess.Popen[bytes] | None = None
    apiserver: subprocess.Popen[bytes] | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        work = self.workdir
        self.etcd = start_process(
            [
                str(Path(ASSETS) / "etcd"),
                "--data-dir",
                str(work / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{self.peer_port}",
            ],
            work / "etcd.log",
        )
        if not (work / "apiserver" / "tls.crt").exists():
            write_bundle(generate_bundle("kubernetes", "default"), work / "apiserver")
            write_service_account_keys(work / "apiserver")
            (work / "tokens.csv").write_text(
                f'{self.token},{self.user},{self.user_uid},"system:masters"\n'
            )
        self.start_apiserver()
        self._write_kubeconfig()

    def start_apiserver(self) -> None:
        work = self.workdir
        self.apiserver = start_process(
            [
                str(Path(ASSETS) / "kube-apiserver"),
                "--etcd-servers",
                f"http://127.0.0.1:{self.etcd_port}",
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(self.api_port),
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
                str(work / "apiserver" / "sa.pub"),
                "--service-account-signing-key-file",
                str(work / "apiserver" / "sa.key"),
                "--service-cluster-ip-range",
                "10.0.0.0/24",
            ],
            work / "apiserver.log",
        )

    def stop_apiserver(self) -> None:
        if self.apiserver is not None:
            stop_process(self.apiserver)
            self.apiserver = None

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            result = self.kubectl("get", "--raw", "/readyz", check=False)
            return result.stdout == "ok"

        wait_for(ready, "kube-apiserver to be ready", timeout)

    def stop(self) -> None:
        self.stop_apiserver()
        if self.etcd is not None:
            stop_process(self.etcd)
            self.etcd = None

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "e2e",
                    "clusters": [
                        {
                            "name": "e2e",
                            "cluster": {
                                "server": self.url,
                                "certificate-authority": str(self.workdir / "apiserver" / "ca.crt"),
                            },
                        }
                    ],
                    "users": [{"name": "admin", "user": {"token": self.token}}],
                    "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
                }
            )
        )

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(
        self, manifest: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", *extra, stdin=manifest, check=check)

    def api(self, timeout: float = 30.0) -> httpx.Client:
        """An HTTPS client for the API server's REST API, as the admin (token, verified CA)."""
        context = ssl.create_default_context(cafile=str(self.workdir / "apiserver" / "ca.crt"))
        return httpx.Client(
            base_url=self.url,
            verify=context,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def install_crds(self) -> None:
        """The CRDs of the project's kinds (tests.crds: published or stand-ins), each
        Established before use."""
        # The project's own Tenant CRD too, as deploy/components/tenants ships it.
        manifest = yaml.safe_dump_all([*crds.crd_documents(), tenant_crd()])
        self.kubectl("apply", "--server-side", "-f", "-", stdin=manifest, timeout=120)
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


@dataclass
class TenantGuard:
    """`tenant-guard serve --kubeconfig` as a process, with its own CA and config file."""

    workdir: Path
    kubeconfig: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"  # the name its certificate is checked against

    @property
    def config_file(self) -> Path:
        return self.workdir / "config.yaml"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "hook" / "ca.crt"

    @property
    def log_file(self) -> Path:
        return self.workdir / "tenant-guard.log"

    def start(self, config: dict[str, Any] | None = None, wait: bool = True) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if config is not None or not self.config_file.exists():
            self.config_file.write_text(yaml.safe_dump(config if config is not None else CONFIG))
        if not self.ca_file.exists():
            write_bundle(generate_bundle("tenant-guard", "tenant-guard"), self.workdir / "hook")
        self.process = start_process(self.command(), self.log_file, cwd=ROOT)
        if wait:
            wait_for(lambda: self.readyz().status_code == 200, "tenant-guard to be ready")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--config",
            str(self.config_file),
            "--cert-dir",
            str(self.workdir / "hook"),
            "--port",
            str(self.port),
            "--kubeconfig",
            str(self.kubeconfig),
            "--config-poll-seconds",
            "1",
            *self.extra_args,
        ]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def get(self, path: str) -> httpx.Response:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.get(f"https://{self.host}:{self.port}{path}", verify=context, timeout=5)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.post(
            f"https://{self.host}:{self.port}{path}", json=body, verify=context, timeout=5
        )

    def readyz(self) -> httpx.Response:
        return self.get("/readyz")


@dataclass
class Cluster(ControlPlane):
    """The control plane with tenant-guard registered as its admission webhook."""

    guard: TenantGuard | None = None

    def audit_statuses(self, kind: str) -> dict[tuple[str, str], str]:
        """(namespace, name) -> status of each stored `kind` object, as the one-shot
        `tenant-guard audit --kubeconfig` with tenant-guard's config reports it."""
        assert self.guard is not None
        command = ["audit", "--kubeconfig", str(self.kubeconfig), "-o", "json"]
        result = subprocess.run(
            [sys.executable, "-m", "webhook", *command, "--config", str(self.guard.config_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode in (0, 1), result.stderr
        return {
            (o["namespace"], o["name"]): o["status"]
            for o in json.loads(result.stdout)["objects"]
            if o["kind"] == kind
        }


TENANTS_COMPONENT = ROOT / "deploy" / "components" / "tenants"


def tenant_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((TENANTS_COMPONENT / "crd.yaml").read_text())
    return crd


def _tenants_component_webhooks(kind: str) -> list[dict[str, Any]]:
    """The webhooks deploy/components/tenants appends to the base's configurations (the
    overlays include the component; deploy/base alone does not)."""
    name = "validating" if kind == "ValidatingWebhookConfiguration" else "mutating"
    patch = yaml.safe_load((TENANTS_COMPONENT / f"{name}-webhook.yaml").read_text())
    return [op["value"] for op in patch if op["op"] == "add" and op["path"] == "/webhooks/-"]


def webhook_configurations(
    port: int, ca_file: Path | None, overlay: str = "base", host: str = "127.0.0.1"
) -> str:
    """The shipped configurations from deploy/, pointed at a local server (no caBundle when
    ca_file is None: `serve --manage-certs` writes it). For deploy/base, with the webhooks of
    deploy/components/tenants added, as both overlays have them."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    trust = {"caBundle": base64.b64encode(ca_file.read_bytes()).decode()} if ca_file else {}
    docs = []
    for doc in yaml.safe_load_all(rendered):
        if doc and doc["kind"] in (
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ):
            if overlay == "base":
                doc["webhooks"] += _tenants_component_webhooks(doc["kind"])
            for hook in doc["webhooks"]:
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {"url": f"https://{host}:{port}{path}", **trust}
            docs.append(doc)
    assert len(docs) == 2, f"deploy/{overlay} must render both webhook configurations"
    return yaml.safe_dump_all(docs)


@contextmanager
def running_cluster(workdir: Path) -> Iterator[Cluster]:
    """A fresh control plane with CRDs, tenant-guard registered, namespaces tenant-a/-b."""
    cluster = Cluster(workdir)
    try:
        cluster.start()
        cluster.wait_ready()
        cluster.install_crds()
        guard = TenantGuard(workdir / "guard", cluster.kubeconfig)
        cluster.guard = guard
        guard.start()
        cluster.apply(webhook_configurations(guard.port, guard.ca_file))
        for name in ("tenant-a", "tenant-b"):
            cluster.apply(namespace(name, name))
            # No controller-manager here: the ServiceAccount admission plugin needs this.
            cluster.kubectl("-n", name, "create", "serviceaccount", "default")
        yield cluster
    finally:
        if cluster.guard is not None:
            cluster.guard.stop()
        cluster.stop()


def namespace(name: str, tenant: str | None) -> str:
    labels = {"tenant": tenant} if tenant else {}
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )


def virtualservice(namespace: str, name: str, hosts: list[str], **spec: Any) -> str:
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


def collection_path(obj: dict[str, Any]) -> str:
    """The REST collection an object is created in (the kinds the e2e suite writes)."""
    group_version = obj["apiVersion"]
    plural = {"VirtualService": "virtualservices", "Pod": "pods", "Service": "services"}
    prefix = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
    return f"{prefix}/namespaces/{obj['metadata']['namespace']}/{plural[obj['kind']]}"


@dataclass(frozen=True)
class Answer:
    """What the API server said to one create: the HTTP status, its message if refused, and
    what admission set (labels, annotations, spec.exportTo) if admitted."""

    status: int
    message: str
    admitted_as: str = ""


def dry_run_create(api: httpx.Client, obj: dict[str, Any]) -> Answer:
    """POST `obj` with dryRun=All: admission runs in full, nothing is stored."""
    response = api.post(collection_path(obj), params={"dryRun": "All"}, json=obj)
    body = response.json()
    if response.status_code != 201:
        return Answer(response.status_code, str(body.get("message", "")))
    meta = body.get("metadata", {})
    outcome = {
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "exportTo": (body.get("spec") or {}).get("exportTo"),
    }
    return Answer(201, "", json.dumps(outcome, sort_keys=True))


def load_mix(own: str, other: str, tag: str = "load") -> list[dict[str, Any]]:
    """Writes of every kind the webhooks judge, allowed and denied: `own` is tenant-a's
    namespace, `other` tenant-b's (with the harness CONFIG's claims)."""
    vs = [
        # allowed as written; allowed with exportTo filled in by the mutating webhook
        virtualservice(own, f"{tag}-ok", [f"{tag}.a.example.com"], exportTo=["."]),
        virtualservice(own, f"{tag}-fill", [f"{tag}-fill.a.example.com", "reviews"]),
        # denied: a host tenant-a claims; another namespace's service and a mesh-wide export
        virtualservice(other, f"{tag}-claimed", [f"{tag}.a.example.com"], exportTo=["."]),
        virtualservice(other, f"{tag}-cross", ["reviews.tenant-a.svc.cluster.local"]),
    ]
    objects = [yaml.safe_load(text) for text in vs]
    pod_spec = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{tag}-pod",
                "namespace": own,
                "annotations": {"sidecar.istio.io/proxyCPULimit": "4"},
            },
            "spec": pod_spec,
        }
    )
    for name, export in ((f"{tag}-svc-local", "."), (f"{tag}-svc-mesh", "*")):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": own,
                    "annotations": {"networking.istio.io/exportTo": export},
                },
                "spec": {"ports": [{"port": 80}]},
            }
        )
    return objects
