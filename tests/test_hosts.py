"""Host names (SPEC.md §3): normalisation, the forms Istio gives them, claims and ownership."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import make_config, make_view
from webhook.policies.ownership import EDGE, host_problem
from webhook.tenancy.claims import TenantIndex
from webhook.tenancy.hosts import (
    Form,
    HostError,
    HostForm,
    classify,
    normalise,
    route_key,
)

LABEL_63 = "a" * 63
NAME_253 = ".".join([LABEL_63, LABEL_63, LABEL_63, "b" * 61])
assert len(NAME_253) == 253

# --- normalise -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("shop.example.com", "shop.example.com", id="plain"),
        pytest.param("Shop.Example.COM", "shop.example.com", id="upper-case"),
        pytest.param("shop.example.com.", "shop.example.com", id="one-trailing-dot"),
        pytest.param("SHOP.EXAMPLE.COM.", "shop.example.com", id="upper-case-and-dot"),
        pytest.param("reviews", "reviews", id="short-name"),
        pytest.param("*", "*", id="star-alone"),
        pytest.param("*.example.com", "*.example.com", id="wildcard"),
        pytest.param("*.Example.com.", "*.example.com", id="wildcard-upper-and-dot"),
        pytest.param("a-b.example.com", "a-b.example.com", id="inner-hyphen"),
        pytest.param("123.example.com", "123.example.com", id="digit-label"),
        pytest.param("xn--shp-sna.example.com", "xn--shp-sna.example.com", id="punycode"),
        pytest.param(f"{LABEL_63}.com", f"{LABEL_63}.com", id="63-char-label"),
        pytest.param(NAME_253, NAME_253, id="253-char-name"),
        pytest.param(NAME_253 + ".", NAME_253, id="253-char-name-with-trailing-dot"),
    ],
)
def test_normalise_accepts(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot-alone"),
        pytest.param("shop.example.com..", id="two-trailing-dots"),
        pytest.param("a..b", id="empty-label"),
        pytest.param(".example.com", id="leading-dot"),
        pytest.param("a.*.b", id="star-in-the-middle"),
        pytest.param("*x.com", id="star-part-of-a-label"),
        pytest.param("x*.com", id="star-at-end-of-label"),
        pytest.param("*.*.com", id="two-star-labels"),
        pytest.param("example.*", id="star-last"),
        pytest.param("-a.com", id="leading-hyphen"),
        pytest.param("a-.com", id="trailing-hyphen"),
        pytest.param(f"{'a' * 64}.com", id="64-char-label"),
        pytest.param(NAME_253 + "c", id="254-char-name"),
        pytest.param("sh\u00f6p.example.com", id="non-ascii-umlaut"),
        pytest.param("shop.ex\u0430mple.com", id="cyrillic-a-look-alike"),
        pytest.param("\u212aube.example.com", id="kelvin-sign-lowercases-to-ascii-k"),
        pytest.param("a\uff0eexample.com", id="fullwidth-dot"),
        pytest.param("_http._tcp.example.com", id="underscore"),
        pytest.param("a_b.example.com", id="underscore-inside"),
        pytest.param(" shop.example.com", id="leading-space"),
        pytest.param("shop .example.com", id="inner-space"),
        pytest.param("shop.example.com ", id="trailing-space"),
        pytest.param("shop.example.com\t", id="tab"),
        pytest.param("shop/example.com", id="slash"),
        pytest.param("shop.example.com:443", id="port"),
    ],
)
def test_normalise_rejects(raw: str) -> None:
    with pytest.raises(HostError):
        normalise(raw)


def test_normalise_rejects_a_non_string() -> None:
    with pytest.raises(HostError):
        normalise(None)  # type: ignore[arg-type]


# --- classify --------------------------------------------------------------------------------

KNOWN_NAMESPACES = {"tenant-a", "tenant-b", "istio-system"}


@pytest.mark.parametrize(
    ("host", "domain", "expected"),
    [
        pytest.param("reviews", "cluster.local", HostForm(Form.SHORT, "tenant-a"), id="short"),
        pytest.param(
            "reviews.tenant-b", "cluster.local", HostForm(Form.SERVICE, "tenant-b"), id="svc.ns"
        ),
        pytest.param(
            "reviews.tenant-b.svc",
            "cluster.local",
            HostForm(Form.SERVICE, "tenant-b"),
            id="svc.ns.svc",
        ),
        pytest.param(
            "reviews.tenant-b.svc.cluster.local",
            "cluster.local",
            HostForm(Form.SERVICE, "tenant-b"),
            id="fqdn",
        ),
        pytest.param(
            "reviews.unknown.svc.cluster.local",
            "cluster.local",
            HostForm(Form.SERVICE, "unknown"),
            id="fqdn-of-unknown-namespace",
        ),
        pytest.param(
            "pod-1.reviews.tenant-b.svc.cluster.local",
            "cluster.local",
            HostForm(Form.SERVICE, "tenant-b"),
            id="name-below-a-service",
        ),
        pytest.param(
            "*.tenant-b.svc.cluster.local",
            "cluster.local",
            HostForm(Form.NAMESPACE_WILDCARD, "tenant-b"),
            id="namespace-wildcard-fqdn",
        ),
        pytest.param(
            "*.tenant-b.svc",
            "cluster.local",
            HostForm(Form.NAMESPACE_WILDCARD, "tenant-b"),
            id="namespace-wildcard-svc",
        ),
        pytest.param(
            "*.tenant-b",
            "cluster.local",
            HostForm(Form.NAMESPACE_WILDCARD, "tenant-b"),
            id="star.ns-of-a-namespace",
        ),
        pytest.param("*", "cluster.local", HostForm(Form.MESH_WILDCARD), id="star"),
        pytest.param(
            "*.svc.cluster.local", "cluster.local", HostForm(Form.MESH_WILDCARD), id="star.svc.cd"
        ),
        pytest.param(
            "*.cluster.local", "cluster.local", HostForm(Form.MESH_WILDCARD), id="star.cd"
        ),
        pytest.param("*.svc", "cluster.local", HostForm(Form.MESH_WILDCARD), id="star.svc"),
        pytest.param(
            "foo.cluster.local", "cluster.local", HostForm(Form.CLUSTER_NAME), id="name-in-domain"
        ),
        pytest.param(
            "tenant-b.svc.cluster.local",
            "cluster.local",
            HostForm(Form.CLUSTER_NAME),
            id="ns.svc.cd",
        ),
        pytest.param("foo.svc", "cluster.local", HostForm(Form.CLUSTER_NAME), id="x.svc"),
        pytest.param(
            "reviews.not-a-namespace",
            "cluster.local",
            HostForm(Form.EXTERNAL, two_label_namespace="not-a-namespace"),
            id="x.y-where-y-is-not-a-namespace",
        ),
        pytest.param(
            "*.not-a-namespace",
            "cluster.local",
            HostForm(Form.EXTERNAL, two_label_namespace="not-a-namespace"),
            id="star.y-not-a-namespace",
        ),
        pytest.param(
            "shop.example.com", "cluster.local", HostForm(Form.EXTERNAL), id="external-name"
        ),
        pytest.param(
            "*.example.com", "cluster.local", HostForm(Form.EXTERNAL), id="external-wildcard"
        ),
        pytest.param(
            "reviews.tenant-b.svc.corp.internal",
            "corp.internal",
            HostForm(Form.SERVICE, "tenant-b"),
            id="custom-domain-fqdn",
        ),
        pytest.param(
            "*.tenant-b.svc.corp.internal",
            "corp.internal",
            HostForm(Form.NAMESPACE_WILDCARD, "tenant-b"),
            id="custom-domain-namespace-wildcard",
        ),
        pytest.param(
            "*.corp.internal",
            "corp.internal",
            HostForm(Form.MESH_WILDCARD),
            id="custom-domain-star",
        ),
        pytest.param(
            "*.svc.corp.internal",
            "corp.internal",
            HostForm(Form.MESH_WILDCARD),
            id="custom-domain-star.svc",
        ),
        pytest.param(
            "foo.corp.internal",
            "corp.internal",
            HostForm(Form.CLUSTER_NAME),
            id="custom-domain-name",
        ),
        pytest.param(
            "reviews.tenant-b.svc",
            "corp.internal",
            HostForm(Form.SERVICE, "tenant-b"),
            id="custom-domain-svc.ns.svc",
        ),
    ],
)
def test_classify(host: str, domain: str, expected: HostForm) -> None:
    assert classify(host, "tenant-a", domain, KNOWN_NAMESPACES.__contains__) == expected


# --- route_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "namespace", "domain", "expected"),
    [
        pytest.param(
            "reviews", "tenant-a", "cluster.local", "reviews.tenant-a.svc.cluster.local", id="short"
        ),
        pytest.param(
            "Reviews.",
            "tenant-a",
            "cluster.local",
            "reviews.tenant-a.svc.cluster.local",
            id="short-upper-dot",
        ),
        pytest.param(
            "reviews.tenant-b.svc",
            "tenant-a",
            "cluster.local",
            "reviews.tenant-b.svc.cluster.local",
            id="svc.ns.svc",
        ),
        pytest.param(
            "reviews.tenant-b.svc.cluster.local",
            "tenant-a",
            "cluster.local",
            "reviews.tenant-b.svc.cluster.local",
            id="fqdn",
        ),
        pytest.param(
            "reviews.tenant-b", "tenant-a", "cluster.local", "reviews.tenant-b", id="svc.ns-as-is"
        ),
        pytest.param(
            "SHOP.example.com.", "tenant-a", "cluster.local", "shop.example.com", id="external"
        ),
        pytest.param("*", "tenant-a", "cluster.local", "*", id="star"),
        pytest.param(
            "reviews",
            "tenant-a",
            "corp.internal",
            "reviews.tenant-a.svc.corp.internal",
            id="custom-domain",
        ),
        pytest.param("a..b", "tenant-a", "cluster.local", None, id="invalid"),
    ],
)
def test_route_key(host: str, namespace: str, domain: str, expected: str | None) -> None:
    assert route_key(host, namespace, domain) == expected


def test_route_key_short_name_and_fqdn_collide() -> None:
    # `reviews` in tenant-a and its FQDN written anywhere route the same traffic.
    assert route_key("reviews", "tenant-a", "cluster.local") == route_key(
        "reviews.tenant-a.svc.cluster.local", "tenant-b", "cluster.local"
    )


# --- TenantIndex ------------------------------------------------------------------------------

CLAIMS = {
    "A": ["*.example.com", "a.example.org"],
    "B": ["shop.example.com", "*.b.example.com"],
    "C": ["*.c.b.example.com"],
}


@pytest.mark.parametrize(
    ("host", "owner"),
    [
        pytest.param("shop.example.com", "B", id="exact-over-wildcard"),
        pytest.param("other.example.com", "A", id="under-wildcard"),
        pytest.param("example.com", None, id="wildcard-does-not-cover-its-base"),
        pytest.param("x.b.example.com", "B", id="longer-suffix-wins"),
        pytest.param("b.example.com", "A", id="base-of-longer-falls-to-shorter"),
        pytest.param("y.c.b.example.com", "C", id="longest-suffix-wins"),
        pytest.param("z.y.c.b.example.com", "C", id="deep-under-longest"),
        pytest.param("c.b.example.com", "B", id="base-of-longest-falls-to-next"),
        pytest.param("a.example.org", "A", id="exact"),
        pytest.param("b.example.org", None, id="unclaimed"),
        pytest.param("x.shop.example.com", "A", id="below-an-exact-claim-is-not-covered-by-it"),
        pytest.param("*.b.example.com", "B", id="wildcard-host-matching-claim"),
        pytest.param("*.x.b.example.com", "B", id="wildcard-host-under-claim"),
        pytest.param("*.example.com", "A", id="wildcard-host-equal-claim"),
        pytest.param("*.c.b.example.com", "C", id="wildcard-host-most-specific"),
        pytest.param("*.com", None, id="wildcard-host-above-every-claim"),
        pytest.param("*.example.org", None, id="wildcard-host-not-covered-by-exact"),
    ],
)
def test_claim_owner_most_specific_wins(host: str, owner: str | None) -> None:
    assert TenantIndex.build(CLAIMS).owner(host) == owner


def test_claim_wildcard_does_not_cover_its_own_base() -> None:
    index = TenantIndex.build({"A": ["*.a.example.com"]})
    assert index.owner("a.example.com") is None
    assert index.owner("www.a.example.com") == "A"


@pytest.mark.parametrize(
    ("wildcard", "tenants"),
    [
        pytest.param("*.example.com", {"A", "B", "C"}, id="everything-under-example.com"),
        pytest.param("*.b.example.com", {"B", "C"}, id="b-and-deeper-c"),
        pytest.param("*.c.b.example.com", {"C"}, id="only-c"),
        pytest.param("*.shop.example.com", set(), id="below-an-exact-claim"),
        pytest.param("*.com", {"A", "B", "C"}, id="top-level"),
        pytest.param("*.example.org", {"A"}, id="exact-claim-below"),
        pytest.param("*.example.net", set(), id="nothing"),
    ],
)
def test_tenants_below(wildcard: str, tenants: set[str]) -> None:
    assert TenantIndex.build(CLAIMS).tenants_below(wildcard) == tenants


@pytest.mark.parametrize(
    ("claims", "clash"),
    [
        pytest.param(
            {"A": ["shop.example.com"], "B": ["shop.example.com"]},
            "shop.example.com",
            id="same-exact-host",
        ),
        pytest.param(
            {"A": ["*.example.com"], "B": ["x.org", "*.example.com"]},
            "*.example.com",
            id="same-wildcard",
        ),
    ],
)
def test_claim_clash_is_an_error(claims: dict[str, list[str]], clash: str) -> None:
    with pytest.raises(ValueError) as info:
        TenantIndex.build(claims)
    message = str(info.value)
    assert clash in message
    assert "'A'" in message
    assert "'B'" in message


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"A": ["shop.example.com", "shop.example.com"]}, id="same-tenant-twice"),
        pytest.param({"A": ["example.com"], "B": ["*.example.com"]}, id="name-and-wildcard-below"),
        pytest.param(
            {"A": ["*.example.com"], "B": ["shop.example.com"]}, id="exact-under-wildcard"
        ),
    ],
)
def test_claims_that_resolve_are_not_a_clash(claims: dict[str, list[str]]) -> None:
    TenantIndex.build(claims)


# --- properties ------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)

# Small alphabets, so that generated claims and hosts collide often.
_labels = st.sampled_from(["a", "b", "c", "ab", "x-y"])
_tlds = st.sampled_from(["com", "org"])


@st.composite
def dns_names(draw: st.DrawFn, max_labels: int = 3) -> str:
    labels = draw(st.lists(_labels, min_size=1, max_size=max_labels))
    return ".".join([*labels, draw(_tlds)])


@st.composite
def claim_hosts(draw: st.DrawFn) -> str:
    name = draw(dns_names())
    return f"*.{name}" if draw(st.booleans()) else name


TENANTS = ["tenant-a", "tenant-b", "tenant-c"]


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, list[str]]:
    """{tenant: [claim, ...]} with every claim held by exactly one tenant."""
    pairs = draw(st.lists(st.tuples(claim_hosts(), st.sampled_from(TENANTS)), max_size=8))
    holders: dict[str, str] = {}
    for host, tenant in pairs:
        holders.setdefault(host, tenant)
    claims: dict[str, list[str]] = {tenant: [] for tenant in TENANTS}
    for host, tenant in holders.items():
        claims[tenant].append(host)
    return claims


def _vary(host: str, data: st.DataObject) -> str:
    """The same host written with random upper-case letters and maybe a trailing dot."""
    flips = data.draw(st.lists(st.booleans(), min_size=len(host), max_size=len(host)))
    varied = "".join(c.upper() if flip else c for c, flip in zip(host, flips, strict=True))
    return varied + "." if data.draw(st.booleans()) else varied


@PROPERTY_SETTINGS
@given(st.text(alphabet="aAbZ09-.*_ \u0430", max_size=24))
def test_normalise_is_idempotent_and_lower_case(raw: str) -> None:
    try:
        name = normalise(raw)
    except HostError:
        return
    assert normalise(name) == name
    assert name == name.lower()
    assert not name.endswith(".")
    assert name.isascii()


@PROPERTY_SETTINGS
@given(claim_hosts(), st.data())
def test_normalise_ignores_case_and_one_trailing_dot(host: str, data: st.DataObject) -> None:
    assert normalise(_vary(host, data)) == normalise(host)


def _brute_force_owner(claims: dict[str, list[str]], host: str) -> str | None:
    """The tenant of the most specific claim covering `host`, by scanning every claim."""
    best: tuple[int, str] | None = None  # (specificity, tenant)
    for tenant, hosts in claims.items():
        for claim in hosts:
            if claim.startswith("*."):
                base = claim[2:]
                if host.startswith("*."):
                    covers = host[2:] == base or host[2:].endswith("." + base)
                else:
                    covers = host.endswith("." + base)
                rank = len(base)
            else:
                covers = claim == host
                rank = 10_000  # an exact claim beats every wildcard
            if covers and (best is None or rank > best[0]):
                assert best is None or rank != best[0], "two claims equally specific"
                best = (rank, tenant)
    return best[1] if best else None


@PROPERTY_SETTINGS
@given(claim_sets(), claim_hosts())
def test_owner_is_the_most_specific_claim(claims: dict[str, list[str]], host: str) -> None:
    assert TenantIndex.build(claims).owner(host) == _brute_force_owner(claims, host)


def _domains(name: str) -> list[str]:
    """`a.b.com` -> `a.b.com`, `b.com`, `com`."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


@PROPERTY_SETTINGS
@given(claim_sets(), st.sampled_from(TENANTS), st.data())
def test_a_wildcard_over_another_tenants_name_is_denied(
    claims: dict[str, list[str]], tenant: str, data: st.DataObject
) -> None:
    # Draw the wildcard's base mostly from the claims' own domains, so that it often covers one.
    domains = sorted(
        {
            d
            for hosts in claims.values()
            for c in hosts
            for d in _domains(c[2:] if c.startswith("*.") else c)
        }
    )
    from_claims = bool(domains) and data.draw(st.integers(0, 3)) > 0
    base = data.draw(st.sampled_from(domains) if from_claims else dns_names(max_labels=2))
    config = make_config(
        tenants={t: {"hosts": hosts} for t, hosts in claims.items()}, unclaimedHosts="allow"
    )
    others = [
        claim
        for other, hosts in claims.items()
        if other != tenant
        for claim in hosts
        if claim.removeprefix("*.").endswith("." + base)
        or (claim.startswith("*.") and claim[2:] == base)
    ]
    problem = host_problem(f"*.{base}", tenant, tenant, make_view(), config)
    if others:
        assert problem is not None, f"*.{base} of {tenant} would capture {others}"
        assert problem.rule == "host-ownership"


_IN_MESH_HOSTS = st.sampled_from(
    [
        "reviews",
        "reviews.tenant-a",
        "reviews.tenant-b",
        "reviews.tenant-b.svc",
        "reviews.tenant-b.svc.cluster.local",
        "*.tenant-b.svc.cluster.local",
        "*.tenant-a.svc.cluster.local",
        "*",
        "*.svc.cluster.local",
        "*.cluster.local",
        "foo.cluster.local",
        "reviews.istio-system",
        "reviews.not-a-namespace",
    ]
)


@PROPERTY_SETTINGS
@given(
    claim_sets(),
    st.sampled_from(TENANTS),
    st.one_of(claim_hosts(), _IN_MESH_HOSTS),
    st.sampled_from(["deny", "allow"]),
    st.data(),
)
def test_case_and_trailing_dot_variants_get_the_same_verdict(
    claims: dict[str, list[str]], tenant: str, host: str, unclaimed: str, data: st.DataObject
) -> None:
    config = make_config(
        tenants={t: {"hosts": hosts} for t, hosts in claims.items()}, unclaimedHosts=unclaimed
    )
    view = make_view()
    variant = _vary(host, data)
    expected = host_problem(host, tenant, tenant, view, config)
    actual = host_problem(variant, tenant, tenant, view, config)
    assert (actual is None) == (expected is None), (host, variant)
    if expected is not None and actual is not None:
        assert (actual.rule, actual.owner) == (expected.rule, expected.owner)


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.text(alphabet="ab-.*", min_size=1, max_size=12),
        claim_hosts(),
        _IN_MESH_HOSTS,
    ),
    st.sampled_from(["tenant-a", "tenant-b", "legacy"]),
)
def test_a_virtualservice_may_route_exactly_the_names_classify_calls_short(
    raw: str, namespace: str
) -> None:
    # host_problem answers a dot-less name before classifying it: the answer must be the one
    # classify's Form.SHORT leads to, for every host.
    try:
        host = normalise(raw)
    except HostError:
        return
    view = make_view()
    config = make_config()
    short = classify(host, namespace, config.domain, view.is_namespace).form is Form.SHORT
    assert short == ("." not in host and host != "*")
    if short:
        assert host_problem(raw, namespace, "tenant-a", view, config) is None
        edge = host_problem(raw, namespace, "tenant-a", view, config, EDGE)
        assert edge is not None and edge.owner == "platform"


def _classify_as_written_first(
    host: str, namespace: str, cluster_domain: str, namespaces: set[str]
) -> HostForm:
    """classify() as it was first written, in one pass with no cache: the reference."""
    if host == "*":
        return HostForm(Form.MESH_WILDCARD)
    if "." not in host:
        return HostForm(Form.SHORT, namespace)

    def cluster_name(labels: list[str]) -> HostForm:
        if len(labels) >= 3 and labels[-1] == "svc" and labels[-2] != "*":
            if labels[0] == "*" and len(labels) == 3:
                return HostForm(Form.NAMESPACE_WILDCARD, labels[-2])
            return HostForm(Form.SERVICE, labels[-2])
        if not labels or labels[0] == "*":
            return HostForm(Form.MESH_WILDCARD)
        return HostForm(Form.CLUSTER_NAME)

    domain_suffix = "." + cluster_domain
    if host.endswith(domain_suffix) or host == cluster_domain:
        inner = host[: -len(domain_suffix)] if host != cluster_domain else ""
        return cluster_name(inner.split(".") if inner else [])
    labels = host.split(".")
    if labels[-1] == "svc" and len(labels) >= 3:
        return cluster_name(labels)
    if labels[-1] == "svc":
        return HostForm(Form.MESH_WILDCARD if labels[0] == "*" else Form.CLUSTER_NAME)
    if len(labels) == 2 and labels[1] in namespaces:
        if labels[0] == "*":
            return HostForm(Form.NAMESPACE_WILDCARD, labels[1])
        return HostForm(Form.SERVICE, labels[1])
    if len(labels) == 2:
        return HostForm(Form.EXTERNAL, two_label_namespace=labels[1])
    return HostForm(Form.EXTERNAL)


_host_labels = st.sampled_from(["*", "a", "b", "svc", "cluster", "local", "tenant-a", "x-y"])


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(_host_labels, min_size=1, max_size=6),
    st.sampled_from(["tenant-a", "b", "svc"]),
    st.sampled_from(["cluster.local", "local", "a.b"]),
    st.sets(st.sampled_from(["tenant-a", "b", "svc", "local", "cluster"])),
)
def test_classify_gives_the_form_of_the_reference(
    labels: list[str], namespace: str, cluster_domain: str, namespaces: set[str]
) -> None:
    # The same host is classified again and again against other namespaces and domains, so
    # the cache of the part that depends on neither is exercised as well.
    try:
        host = normalise(".".join(labels))
    except HostError:
        return
    for _ in range(2):
        form = classify(host, namespace, cluster_domain, namespaces.__contains__)
        assert form == _classify_as_written_first(host, namespace, cluster_domain, namespaces)
