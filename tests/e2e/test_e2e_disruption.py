"""Outages, on a control plane of this module's own (it is stopped and restarted here): the
webhook down (lockout safety of the shipped configurations), tenant-guard restarted, and the
API server restarted under a running tenant-guard. Throughout, every answer is either the
correct one or a refusal; a violation is never allowed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from tests.builders import VS_CREATE, derive, vs_spec
from tests.e2e.harness import (
    Answer,
    Cluster,
    PollingThread,
    TenantGuard,
    dry_run_create,
    namespace,
    running_cluster,
    virtualservice,
    wait_for,
)

HIJACK_HOST = "reviews.tenant-a.svc.cluster.local"
FAILED_CALLING = "failed calling webhook"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-disruption")) as running:
        running.apply(namespace("platform", None))
        for name in ("platform", "kube-system"):
            running.kubectl("-n", name, "create", "serviceaccount", "default")
        yield running


def guard_of(plane: Cluster) -> TenantGuard:
    assert plane.guard is not None
    return plane.guard


# --- the webhook down --------------------------------------------------------------------------


def test_webhook_down_refuses_tenant_writes_and_leaves_the_platform_writable(
    plane: Cluster,
) -> None:
    guard = guard_of(plane)
    guard.stop()
    try:
        refused = {
            "VirtualService in tenant-a": plane.apply(
                virtualservice("tenant-a", "down", ["down.a.example.com"]), check=False
            ),
            "Pod in tenant-a": plane.kubectl(
                "-n",
                "tenant-a",
                "run",
                "down",
                "--image=nginx:1.25",
                "--restart=Never",
                check=False,
            ),
            "Service in tenant-a": plane.kubectl(
                "-n", "tenant-a", "create", "service", "clusterip", "down", "--tcp=80", check=False
            ),
            "tenant-labelled Namespace": plane.apply(
                namespace("tenant-c", "tenant-c"), check=False
            ),
        }
        for what, result in refused.items():
            assert result.returncode == 1, f"{what} was admitted with the webhook down"
            assert FAILED_CALLING in result.stderr, (what, result.stderr)

        # What the shipped selectors keep out of the webhook's reach stays writable.
        plane.apply(virtualservice("platform", "edge", ["edge.example.net"]))
        for ns in ("platform", "kube-system"):
            plane.kubectl("-n", ns, "run", "up", "--image=nginx:1.25", "--restart=Never")
            plane.kubectl("-n", ns, "create", "service", "clusterip", "up", "--tcp=80")
        plane.kubectl("create", "namespace", "plain")
        plane.kubectl("label", "namespace", "kube-system", "team=platform")
        plane.kubectl("-n", "tenant-a", "create", "configmap", "not-sent")  # kinds not sent
        # The uninstall path: the configurations can be deleted while the webhook is down.
        for kind, name in (
            ("validatingwebhookconfiguration", "tenant-guard"),
            ("mutatingwebhookconfiguration", "00-tenant-guard"),
        ):
            plane.kubectl("delete", kind, name, "--dry-run=server")
    finally:
        guard.start()
    plane.apply(virtualservice("tenant-a", "down", ["down.a.example.com"]))


# --- restarts ----------------------------------------------------------------------------------


def review(namespace: str, name: str, host: str) -> dict[str, Any]:
    spec = vs_spec([host], export_to=["."])
    return derive(VS_CREATE, namespace=namespace, name=name, spec=spec)


VIOLATION = review("tenant-b", "hijack", HIJACK_HOST)
CLEAN = review("tenant-a", "clean", "clean.a.example.com")


@dataclass
class DirectPoller(PollingThread):
    """Sends a violating and a clean review straight to tenant-guard, and reads /readyz, until
    stopped: what it answered while the cluster was unreachable."""

    guard: TenantGuard
    violation: list[tuple[bool, int]] = field(default_factory=list)  # (allowed, code)
    clean: list[tuple[bool, int]] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)  # 0: not listening
    pause: ClassVar[float] = 0.2

    def poll(self) -> None:
        try:
            for body, answers in ((VIOLATION, self.violation), (CLEAN, self.clean)):
                response = self.guard.post("/validate", body).json()["response"]
                code = int(response.get("status", {}).get("code", 200))
                answers.append((bool(response["allowed"]), code))
            self.ready.append(self.guard.readyz().status_code)
        except httpx.TransportError:
            self.ready.append(0)

    def check_answers(self) -> None:
        assert self.violation and self.clean
        # The violation: denied for what it is (403), or refused (503: tenancy unknown).
        assert all(not allowed and code in (403, 503) for allowed, code in self.violation)
        # The clean object: allowed, or refused; never denied for a violation it lacks.
        assert all(allowed or code == 503 for allowed, code in self.clean)


def phases(statuses: list[int]) -> list[int]:
    """The sequence of distinct /readyz states, repeats collapsed."""
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]


def test_api_server_restart_under_a_running_tenant_guard(plane: Cluster) -> None:
    guard = guard_of(plane)
    with DirectPoller(guard) as poller:
        wait_for(lambda: poller.ready[-1:] == [200], "first answers", timeout=10)
        plane.stop_apiserver()
        # The caches keep the last state and are trusted for 60 s of failing watches.
        wait_for(lambda: poller.ready[-1:] == [503], "/readyz to go unready", timeout=100)
        detail = guard.readyz().json()["detail"]
        assert any("watch failing since" in reason for reason in detail), detail

        # tenant-guard restarted while the API server is away: no cache, nothing to judge by.
        guard.stop()
        guard.start(wait=False)
        wait_for(lambda: guard.readyz().status_code == 503, "the new process to listen")
        detail = guard.readyz().json()["detail"]
        assert any("initial list not complete" in reason for reason in detail), detail
        refused = len(poller.violation), len(poller.clean)
        wait_for(
            lambda: len(poller.clean) > refused[1] + 3, "answers from the new process", timeout=20
        )
        assert poller.clean[-1] == (False, 503)  # refused: its namespace cannot be read

        plane.start_apiserver()
        plane.wait_ready()
        wait_for(lambda: poller.ready[-1:] == [200], "/readyz to be ready again", timeout=60)
        wait_for(lambda: len(poller.clean) > refused[1] + 20, "answers after recovery", timeout=20)
    poller.check_answers()
    assert phases([s for s in poller.ready if s != 0]) == [200, 503, 200]
    assert poller.violation[-1] == (False, 403) and poller.clean[-1] == (True, 200)
    assert (False, 503) in poller.violation  # the refusals above were seen, not just assumed

    # Both caches resumed: a namespace and a VirtualService written after the outage count.
    plane.apply(namespace("tenant-c", "tenant-c"))
    plane.kubectl("-n", "tenant-c", "create", "serviceaccount", "default")
    plane.apply(virtualservice("tenant-a", "after", ["after.example.net"]))
    with plane.api() as api:
        obj = yaml.safe_load(virtualservice("tenant-c", "after", ["after.example.net"]))

        def collision_seen() -> bool:
            answer = dry_run_create(api, obj)
            return answer.status == 403 and "already routed by VirtualService tenant-a/after" in (
                answer.message
            )

        wait_for(collision_seen, "the VirtualService watch to see tenant-a/after", timeout=20)


def test_tenant_guard_restart_answers_correctly_or_refuses(plane: Cluster) -> None:
    guard = guard_of(plane)
    hijack = yaml.safe_load(virtualservice("tenant-b", "hijack", [HIJACK_HOST]))
    own = yaml.safe_load(virtualservice("tenant-b", "own", ["shop.example.org"]))
    answers: list[tuple[str, Answer]] = []

    def ask(api: httpx.Client) -> None:
        answers.append(("hijack", dry_run_create(api, hijack)))
        answers.append(("own", dry_run_create(api, own)))

    with plane.api() as api:
        ask(api)
        guard.stop()
        ask(api)
        guard.start(wait=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ask(api)
            try:
                if guard.readyz().status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        ask(api)
    outcomes = {(what, answer.status) for what, answer in answers}
    for what, answer in answers:
        if answer.status == 500:
            assert FAILED_CALLING in answer.message  # refused while down
        elif answer.status == 503:  # refused while its caches have not listed yet
            assert "has not listed the namespaces, routes and Tenants yet" in answer.message
        elif what == "hijack":
            assert answer.status == 403 and f'"{HIJACK_HOST}" belongs to tenant' in answer.message
        else:
            assert answer.status == 201, answer
    assert {("hijack", 500), ("own", 500), ("hijack", 403), ("own", 201)} <= outcomes
    assert [answer.status for _, answer in answers[-2:]] == [403, 201]  # back to normal
