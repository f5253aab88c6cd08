"""Bad input as a property: captured reviews, mutated anywhere (a value of another type, a key
deleted, the body cut short), sent to the real TLS server, never get a 5xx, always get their uid
back, and a tenant object whose checked fields lost their shape is never admitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.builders import load_review
from tests.server_harness import RunningServer

Path = tuple[str | int, ...]

# Fields of request.object that tenant-guard's rules read, per captured review ("*" is any key
# or index). A value of another JSON type there must never be admitted on /validate.
CHECKED: dict[str, tuple[Path, ...]] = {
    "virtualservice-update-exportto-weights.json": (
        ("spec",),
        ("spec", "hosts"),
        ("spec", "hosts", "*"),
        ("spec", "gateways"),
        ("spec", "gateways", "*"),
        ("spec", "exportTo"),
        ("spec", "exportTo", "*"),
        ("metadata",),
    ),
    "destinationrule-create-subsets-exportto.json": (
        ("spec",),
        ("spec", "exportTo"),
        ("spec", "exportTo", "*"),
        ("metadata",),
    ),
    "serviceentry-create-external-dns.json": (
        ("spec",),
        ("spec", "exportTo"),
        ("spec", "exportTo", "*"),
        ("metadata",),
    ),
    "pod-update-label.json": (
        ("metadata",),
        ("metadata", "labels"),
        ("metadata", "labels", "*"),
    ),
    "sidecar-create-egress-hosts.json": (
        ("spec",),
        ("spec", "egress"),
        ("spec", "egress", "*"),
        ("spec", "egress", "*", "hosts"),
        ("spec", "egress", "*", "hosts", "*"),
    ),
    "httproute-create-parentref.json": (
        ("spec",),
        ("spec", "hostnames"),
        ("spec", "hostnames", "*"),
        ("spec", "parentRefs"),
        ("spec", "parentRefs", "*"),
        ("spec", "parentRefs", "*", "*"),
    ),
    "gateway-create-https-credential.json": (
        ("spec",),
        ("spec", "selector"),
        ("spec", "selector", "*"),
        ("spec", "servers"),
        ("spec", "servers", "*"),
        ("spec", "servers", "*", "hosts"),
        ("spec", "servers", "*", "hosts", "*"),
    ),
}
# Captured reviews made admissible under the example config first, so that what the property
# mutates starts out allowed: a claimed hostname, and a selector of the tenant's own pods.
ADMISSIBLE: dict[str, dict[str, Any]] = {
    "httproute-create-parentref.json": {"hostnames": ["reviews.a.example.com"]},
    "gateway-create-https-credential.json": {
        "selector": {"app": "tenant-a-gateway"},
        "servers": [
            {
                "hosts": ["tenant-a/*.a.example.com"],
                "port": {"name": "https", "number": 443, "protocol": "HTTPS"},
                "tls": {"credentialName": "tenant-a-cert", "mode": "SIMPLE"},
            }
        ],
    },
}
# Reviews judged too (no 5xx, the uid echoed), whose checks depend on who asks or what else
# the review says: a label admin may write any Namespace, and the others are denied as captured.
OTHERS = (
    "namespace-update-add-label.json",
    "virtualservice-create-v1alpha3-cross-tenant-host.json",
    "gateway-create-https-credential.json",
    "httproute-create-parentref.json",
)
# Mutating copies, sent to /mutate.
MUTATING = (
    "pod-create-plain.json",
    "pod-create-generatename-no-labels.json",
    "virtualservice-create-short-host.json",
    "destinationrule-create-subsets-exportto.json",
)

DEEP = "\x00deep\x00"  # replaced by deeply nested brackets once serialised
# Nested deeper than pydantic's JSON reader goes, but read (and judged) all the same.
DEEP_READ = "\x00deep-read\x00"
REPLACEMENTS: tuple[object, ...] = (
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "é" * 3,
    "h" * 200_000,
    [],
    ["x", 1],
    {},
    {"x": {"y": []}},
    DEEP,
    DEEP_READ,
)


def paths_of(value: object, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, (*prefix, index))


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value in (DEEP, DEEP_READ):
        return "array"
    return type(value).__name__


def matches(pattern: Path, path: Path) -> bool:
    return len(pattern) == len(path) and all(
        p in ("*", q) for p, q in zip(pattern, path, strict=True)
    )


@dataclass(frozen=True)
class Case:
    fixture: str
    endpoint: str
    review: dict[str, Any]
    checked: tuple[Path, ...] = ()  # fields whose wrong shape must never be admitted


def admissible(fixture: str) -> dict[str, Any]:
    review = load_review(fixture)
    review["request"]["object"]["spec"].update(ADMISSIBLE.get(fixture, {}))
    return review


CASES = (
    [Case(f, "/validate", admissible(f), checked) for f, checked in CHECKED.items()]
    + [Case(f, "/validate", load_review(f)) for f in OTHERS]
    + [Case(f, "/mutate", load_review(f, mutating=True)) for f in MUTATING]
)


@dataclass(frozen=True)
class Mutation:
    how: str  # replace | delete | truncate
    path: Path = ()
    value: object = None
    cut: float = 0.0

    def body(self, review: dict[str, Any]) -> bytes:
        if self.how == "truncate":
            text = json.dumps(review)
            return text[: int(len(text) * self.cut)].encode()
        mutated = json.loads(json.dumps(review))
        if not self.path:
            mutated = self.value
        else:
            parent: Any = mutated
            for step in self.path[:-1]:
                parent = parent[step]
            if self.how == "delete":
                del parent[self.path[-1]]
            else:
                parent[self.path[-1]] = self.value
        text = json.dumps(mutated)
        text = text.replace(json.dumps(DEEP), "[" * 20_000 + "]" * 20_000)
        return text.replace(json.dumps(DEEP_READ), "[" * 500 + "]" * 500).encode()

    def breaks_checked_field(self, case: Case) -> bool:
        """A checked field of the object now holds a value of another (non-null) type."""
        if self.how != "replace" or self.value is None or self.path[:2] != ("request", "object"):
            return False
        relative = self.path[2:]
        if not any(matches(pattern, relative) for pattern in case.checked):
            return False
        original: Any = case.review
        for step in self.path:
            original = original[step]
        return json_type(original) != json_type(self.value)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[Case, Mutation]:
    # Half the draws go to the reviews with checked fields, where the strongest claim is made.
    case = draw(st.one_of(st.sampled_from([c for c in CASES if c.checked]), st.sampled_from(CASES)))
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "truncate"]))
    if how == "truncate":
        return case, Mutation(how, cut=draw(st.floats(0.0, 0.999)))
    # Mutations of the checked fields are drawn often enough to matter.
    focused = [
        p
        for p in paths_of(case.review)
        if Mutation("replace", p).path[:2]
        == (
            "request",
            "object",
        )
        and any(matches(pattern, p[2:]) for pattern in case.checked)
    ]
    pool = focused if focused and draw(st.booleans()) else list(paths_of(case.review))
    path = draw(st.sampled_from(pool))
    if how == "delete":
        return case, Mutation("delete" if path else "replace", path, None)
    return case, Mutation("replace", path, draw(st.sampled_from(REPLACEMENTS)))


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.mark.parametrize("case", [c for c in CASES if c.checked], ids=lambda c: c.fixture)
def test_the_reviews_the_property_mutates_are_admitted_as_captured(
    client: httpx.Client, case: Case
) -> None:
    # Otherwise "never admitted after a mutation" would hold for a dull reason.
    response = client.post(case.endpoint, json=case.review)
    assert response.json()["response"]["allowed"] is True


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutations())
def test_mutated_reviews_never_get_a_5xx_nor_admit_an_unchecked_object(
    client: httpx.Client, mutated: tuple[Case, Mutation]
) -> None:
    case, mutation = mutated
    body = mutation.body(case.review)
    response = client.post(
        case.endpoint, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    event(f"HTTP {response.status_code}")
    if response.status_code != 200:
        assert response.status_code in (400, 413)
        assert response.json()["error"]
        return
    sent = json.loads(body)
    answer = response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == sent["request"]["uid"]
    # Every shape is judged or refused for what it is, never by a policy that failed on it.
    assert answer["response"].get("status", {}).get("reason") != "InternalError", answer
    if mutation.breaks_checked_field(case):
        event("a checked field of another type")
        assert answer["response"]["allowed"] is False, answer
