"""What the benchmark sends and to whom: generated configs and request bodies from fixtures.

Configs follow the schema of examples/config.yaml. Tenant 0 is `tenant-a` and tenant 1 is
`tenant-b` (the namespaces the captured fixtures use); the others are `tenant-00002`, ...
Every tenant owns one namespace of its own name and claims 10 external hosts; every tenth
tenant claims one wildcard among them, so 10,000 tenants claim 100,000 hosts, 1,000 of them
wildcards.

Request bodies are the captured AdmissionReviews with their object rewritten (same envelope,
userInfo, options, managedFields shape), serialised compactly as kube-apiserver sends them.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

HOSTS_PER_TENANT = 10
WILDCARD_EVERY = 10  # one tenant in ten claims one wildcard

Endpoint = Literal["validate", "mutate"]


def tenant_name(index: int) -> str:
    if index == 0:
        return "tenant-a"
    if index == 1:
        return "tenant-b"
    return f"tenant-{index:05d}"


def tenant_hosts(name: str, index: int) -> list[str]:
    """Ten claims: `shop.<t>.example.com`, `api-N.<t>.example.com`, maybe `*.apps.<t>...`."""
    hosts = [f"shop.{name}.example.com"]
    wildcard = index % WILDCARD_EVERY == 0
    exact = HOSTS_PER_TENANT - 1 - (1 if wildcard else 0)
    hosts += [f"api-{n}.{name}.example.com" for n in range(1, exact + 1)]
    if wildcard:
        hosts.append(f"*.apps.{name}.example.net")
    return hosts


def config_data(tenants: int) -> dict[str, Any]:
    """A config with `tenants` tenants, each with its namespace in the offline namespaces map."""
    if tenants < 2:
        raise ValueError("the fixtures need at least tenant-a and tenant-b")
    spec: dict[str, Any] = {}
    namespaces: dict[str, dict[str, str]] = {}
    for index in range(tenants):
        name = tenant_name(index)
        entry: dict[str, Any] = {"hosts": tenant_hosts(name, index)}
        if index == 0:
            entry["proxy"] = {"cpuLimit": "1"}
        spec[name] = entry
        namespaces[name] = {"tenant": name}
    namespaces["istio-system"] = {}
    namespaces["kube-system"] = {}
    return {
        "tenantLabel": "tenant",
        "clusterDomain": "cluster.local",
        "enforcement": "enforce",
        "unclaimedHosts": "deny",
        "sharedGateways": ["istio-system/public-gateway"],
        "labelAdmins": {"groups": ["system:masters"], "users": []},
        "exempt": {"groups": [], "users": []},
        "proxyDefaults": {
            "cpu": "100m",
            "cpuLimit": "500m",
            "memory": "128Mi",
            "memoryLimit": "256Mi",
        },
        "tenants": spec,
        "namespaces": namespaces,
    }


def write_config(tenants: int, path: Path) -> Path:
    text = yaml.safe_dump(config_data(tenants), sort_keys=False, default_flow_style=None)
    path.write_text(f"# tenant-guard benchmark config: {tenants} tenants (generated)\n{text}")
    return path


# --- request bodies --------------------------------------------------------------------------


def fixtures_dir(override: Path | None = None) -> Path:
    """The captured AdmissionReviews: --fixtures, else the repository's own (tests/fixtures)."""
    if override is not None:
        return override
    # Not tests.builders.FIXTURES: the baseline server imports this module and must stay a
    # bare stack, without tenant-guard's modules.
    return Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "admission"


def _load(directory: Path, name: str) -> dict[str, Any]:
    data = json.loads((directory / name).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
        raise ValueError(f"{directory / name}: not an AdmissionReview request")
    return data


def _rewrite_virtualservice(
    review: dict[str, Any], name: str, hosts: list[str], export_to: list[str], uid: str
) -> dict[str, Any]:
    """A captured VirtualService CREATE with another name, hosts and exportTo, kept coherent:
    the last-applied annotation and managedFields say what the new object says."""
    review = copy.deepcopy(review)
    request = review["request"]
    obj = request["object"]
    namespace = request["namespace"]
    request["uid"] = uid
    request["name"] = name
    metadata = obj["metadata"]
    metadata["name"] = name
    metadata["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant-guard-bench/{name}/object"))
    spec = obj["spec"]
    spec["hosts"] = hosts
    spec["exportTo"] = export_to
    applied = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"annotations": {}, "name": name, "namespace": namespace},
        "spec": spec,
    }
    annotations = metadata.setdefault("annotations", {})
    annotations["kubectl.kubernetes.io/last-applied-configuration"] = (
        json.dumps(applied, separators=(",", ":")) + "\n"
    )
    for entry in metadata.get("managedFields") or []:
        fields = entry.get("fieldsV1", {}).get("f:spec")
        if isinstance(fields, dict):
            fields["f:exportTo"] = {}
    return review


def _uid(label: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant-guard-bench/{label}"))


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One kind of request: its body, the endpoint, and how to tell a right answer."""

    name: str
    endpoint: Endpoint
    body: bytes
    expect: str  # allowed / denied / patched, for messages
    check: Callable[[dict[str, Any]], str | None]  # problem with a response, or None


def _uid_of(body: bytes) -> str:
    uid = json.loads(body)["request"]["uid"]
    assert isinstance(uid, str)
    return uid


def _check_allowed(uid: str) -> Callable[[dict[str, Any]], str | None]:
    def check(review: dict[str, Any]) -> str | None:
        response = review.get("response") or {}
        if response.get("uid") != uid:
            return f"uid {response.get('uid')!r}, expected {uid!r}"
        if response.get("allowed") is not True:
            return f"not allowed: {json.dumps(response.get('status'))}"
        if "patch" in response or response.get("warnings"):
            return "allowed, but with a patch or warnings"
        return None

    return check


def _check_denied(uid: str, violations: int) -> Callable[[dict[str, Any]], str | None]:
    def check(review: dict[str, Any]) -> str | None:
        response = review.get("response") or {}
        if response.get("uid") != uid:
            return f"uid {response.get('uid')!r}, expected {uid!r}"
        status = response.get("status") or {}
        if response.get("allowed") is not False or status.get("code") != 403:
            return f"expected a 403 denial, got {json.dumps(response)[:300]}"
        message = str(status.get("message", ""))
        if not message.startswith(f"{violations} tenant-guard violations:"):
            return f"expected {violations} violations, got message {message[:300]!r}"
        return None

    return check


def _check_patched(uid: str, tenant: str) -> Callable[[dict[str, Any]], str | None]:
    def check(review: dict[str, Any]) -> str | None:
        response = review.get("response") or {}
        if response.get("uid") != uid:
            return f"uid {response.get('uid')!r}, expected {uid!r}"
        if response.get("allowed") is not True or response.get("patchType") != "JSONPatch":
            return f"expected an allowed JSONPatch response, got {json.dumps(response)[:300]}"
        ops = json.loads(base64.b64decode(response["patch"]))
        labels = [op for op in ops if op.get("path") in ("/metadata/labels", "/metadata/labels/")]
        if not labels or labels[0].get("value", {}).get("tenant") != tenant:
            return f"the patch does not set the tenant label to {tenant!r}: {ops}"
        if len(ops) < 5:
            return f"expected the label and 4 sidecar annotations, got {len(ops)} ops"
        return None

    return check


def _compact(review: dict[str, Any]) -> bytes:
    return json.dumps(review, separators=(",", ":")).encode()


def workloads(fixtures: Path) -> list[Workload]:
    """The three tenant-guard request kinds, derived from the captured fixtures."""
    allowed = _rewrite_virtualservice(
        _load(fixtures, "virtualservice-create-short-host.json"),
        "bench-allowed",
        [
            "reviews",  # short name
            "ratings",  # short name
            "reviews.tenant-a.svc.cluster.local",  # service of its own namespace
            "shop.tenant-a.example.com",  # claimed exact host
            "web.apps.tenant-a.example.net",  # under its claimed wildcard
        ],
        ["."],
        _uid("vs-allowed"),
    )
    if allowed["request"]["namespace"] != "tenant-a":
        raise ValueError("virtualservice-create-short-host.json is expected in tenant-a")
    denied = _rewrite_virtualservice(
        _load(fixtures, "virtualservice-create-v1alpha3-cross-tenant-host.json"),
        "bench-denied",
        [
            "reviews.tenant-a.svc.cluster.local",  # a service of tenant-a (violation 1)
            "shop.tenant-a.example.com",  # a host claimed by tenant-a (violation 2)
            "reviews",  # its own: fine
        ],
        ["*"],  # the whole mesh (violation 3)
        _uid("vs-denied"),
    )
    if denied["request"]["namespace"] != "tenant-b":
        raise ValueError("virtualservice-create-v1alpha3-cross-tenant-host.json: not tenant-b")
    pod = _load(fixtures, "mutating/pod-create-plain.json")
    if pod["request"]["namespace"] != "tenant-a":
        raise ValueError("mutating/pod-create-plain.json is expected in tenant-a")

    allowed_body, denied_body, pod_body = _compact(allowed), _compact(denied), _compact(pod)
    return [
        Workload(
            "validate VS allowed",
            "validate",
            allowed_body,
            "allowed",
            _check_allowed(_uid_of(allowed_body)),
        ),
        Workload(
            "validate VS denied",
            "validate",
            denied_body,
            "denied (3 violations)",
            _check_denied(_uid_of(denied_body), 3),
        ),
        Workload(
            "mutate Pod",
            "mutate",
            pod_body,
            "patched",
            _check_patched(_uid_of(pod_body), "tenant-a"),
        ),
    ]


# The baseline answers every body alike; it gets the Pod body (the largest of the three).
BASELINE_RESPONSE: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "response": {"uid": "00000000-0000-0000-0000-000000000000", "allowed": True},
}


def check_baseline(review: dict[str, Any]) -> str | None:
    if review != BASELINE_RESPONSE:
        return f"unexpected baseline answer {json.dumps(review)[:300]}"
    return None
