"""What decide() derives from a config once (sets of exempt users and groups, of shared
gateways, a tenant's claims in force, sidecar bounds) belongs to that config: a reloaded
config, a new object, decides by its own values, and the one before keeps deciding by its
own."""

from __future__ import annotations

import dataclasses

from tests.builders import (
    ADMIN,
    POD_CREATE,
    TENANT_USER,
    make_config,
    make_request,
    make_view,
    message_of,
    mutate,
    patch_of,
    validate,
    vs_request,
)
from webhook.admission.decide import Decision


def test_exempt_users_and_groups_are_those_of_the_config_asked() -> None:
    request = vs_request(["reviews.tenant-b.svc.cluster.local"], user=TENANT_USER)
    by_user = make_config(exempt={"users": [TENANT_USER["username"]], "groups": []})
    by_group = make_config(exempt={"users": [], "groups": ["tenant-a-devs"]})
    nobody = make_config(exempt={"users": [], "groups": []})
    for _ in range(2):  # asked twice, in turn: no answer carried over from one to the next
        assert validate(request, config=by_user).reason == "exempt"
        assert validate(request, config=by_group).reason == "exempt"
        assert validate(request, config=nobody).allowed is False
    admin = vs_request(["reviews.tenant-b.svc.cluster.local"], user=ADMIN)
    assert validate(admin, config=by_group).allowed is False  # neither its user nor groups


def test_shared_gateways_are_those_of_the_config_asked() -> None:
    request = vs_request(["shop.example.com"], gateways=["istio-system/public-gateway"])
    shared = make_config(sharedGateways=["istio-system/public-gateway"])
    other = make_config(sharedGateways=["istio-system/other-gateway"])
    for _ in range(2):
        assert validate(request, config=shared).allowed is True
        denied = validate(request, config=other)
        assert denied.allowed is False
        assert [v.rule for v in denied.violations] == ["gateway"]
        assert "(istio-system/other-gateway)" in message_of(denied)


def test_the_claims_a_fix_text_lists_are_those_of_the_config_asked() -> None:
    request = vs_request(["shop.example.org"])
    view = make_view()
    before = make_config()
    tenants = {
        "tenant-a": {"hosts": ["new.example.com"]},
        "tenant-b": {"hosts": ["shop.example.org"]},
        "tenant-c": {"hosts": []},
    }
    reloaded = make_config(tenants=tenants)
    for _ in range(2):
        old_text, new_text = (message_of(validate(request, view, c)) for c in (before, reloaded))
        assert "a.example.com, *.a.example.com, shop.example.com" in old_text
        assert "new.example.com" not in old_text
        assert 'hosts claimed by tenant "tenant-a": new.example.com' in new_text


def test_sidecar_bounds_are_those_of_the_config_asked() -> None:
    request = make_request(POD_CREATE, mutating=True)
    small = make_config()
    defaults = {"cpu": "50m", "cpuLimit": "200m", "memory": "64Mi", "memoryLimit": "128Mi"}
    tenants = {"tenant-a": {"hosts": [], "proxy": {"cpuLimit": "300m"}}}
    reloaded = make_config(proxyDefaults=defaults, tenants=tenants)
    for _ in range(2):
        old, new = (_annotations(mutate(request, config=c)) for c in (small, reloaded))
        assert old["sidecar.istio.io/proxyCPULimit"] == "1"  # tenant-a's own, over 500m
        assert old["sidecar.istio.io/proxyCPU"] == "100m"
        assert new["sidecar.istio.io/proxyCPULimit"] == "300m"
        assert new["sidecar.istio.io/proxyCPU"] == "50m"


def _annotations(decision: Decision) -> dict[str, str]:
    """The sidecar annotations a patch sets (the pod has annotations: one op each)."""
    prefix = "/metadata/annotations/"
    patch = patch_of(decision) or []
    return {
        op["path"][len(prefix) :].replace("~1", "/"): op["value"]
        for op in patch
        if op["path"].startswith(prefix)
    }


def test_a_refused_hosts_fix_text_is_that_of_the_config_and_tenants_asked() -> None:
    # The fix text is kept by the tenant index it names claims from; the same index (Tenant
    # objects in a cluster) under a reloaded config still says the config's cluster domain.
    request = vs_request(["reviews.tenant-b.svc.cluster.local", "shop.example.org"])
    here, there = make_config(), make_config(clusterDomain="cluster.internal")
    view = dataclasses.replace(make_view(), tenants=here.claims)
    for _ in range(2):
        assert "reviews.tenant-a.svc.cluster.local)" in message_of(validate(request, view, here))
        assert "reviews.tenant-a.svc.cluster.internal)" in message_of(
            validate(request, view, there)
        )
    claims = make_config(
        tenants={"tenant-a": {"hosts": ["other.example.com"]}, "tenant-b": {"hosts": []}}
    )
    for config, listed in ((here, "a.example.com, *.a.example.com"), (claims, "other.example")):
        assert f'hosts claimed by tenant "tenant-a": {listed}' in message_of(
            validate(request, config=config)
        )
