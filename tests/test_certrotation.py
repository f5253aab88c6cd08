"""The renewal decisions of webhook.certificates.rotation as tables: time is a parameter,
nothing is real."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from webhook.certificates import rotation as certrotation
from webhook.certificates.rotation import CertFacts, Observed, Plan, RotationPolicy, plan

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = RotationPolicy()
NAMES = [
    "tenant-guard",
    "tenant-guard.tg",
    "tenant-guard.tg.svc",
    "tenant-guard.tg.svc.cluster.local",
]


def ca(issued: timedelta, days: int = 365, fp: str = "ca") -> CertFacts:
    """A CA issued `issued` before NOW (negative: in the future), valid `days`."""
    start = NOW - issued
    return CertFacts(start, start + days * DAY, fingerprint=fp, is_ca=True)


def leaf(issued: timedelta, days: int = 90, names: list[str] = NAMES) -> CertFacts:
    start = NOW - issued
    return CertFacts(start, start + days * DAY, fingerprint="leaf", sans=frozenset(names))


def observed(
    the_ca: CertFacts | None,
    the_leaf: CertFacts | None,
    chains: bool = True,
    previous: tuple[CertFacts, ...] = (),
) -> Observed:
    bundle = ((the_ca,) if the_ca else ()) + previous
    return Observed(the_ca, the_leaf, chains, bundle)


FRESH_CA = ca(10 * DAY)
FRESH_LEAF = leaf(DAY)


@pytest.mark.parametrize(
    ("state", "new_ca", "new_leaf", "reason"),
    [
        pytest.param(observed(None, None), True, True, "no usable CA", id="empty-secret"),
        pytest.param(observed(FRESH_CA, FRESH_LEAF), False, False, None, id="fresh"),
        pytest.param(observed(FRESH_CA, None), False, True, "no usable serving", id="no-leaf"),
        pytest.param(
            observed(FRESH_CA, leaf(59 * DAY)), False, False, None, id="leaf-just-before-due"
        ),
        pytest.param(
            observed(FRESH_CA, leaf(61 * DAY)), False, True, "less than 33%", id="leaf-near-expiry"
        ),
        pytest.param(observed(FRESH_CA, leaf(91 * DAY)), False, True, "expired", id="leaf-expired"),
        pytest.param(
            observed(FRESH_CA, leaf(DAY, names=["tenant-guard.old.svc"])),
            False,
            True,
            "does not cover tenant-guard,",
            id="san-change",
        ),
        pytest.param(
            observed(FRESH_CA, FRESH_LEAF, chains=False),
            False,
            True,
            "not signed by the CA",
            id="leaf-from-another-ca",
        ),
        pytest.param(
            observed(ca(240 * DAY), FRESH_LEAF), False, False, None, id="ca-just-before-due"
        ),
        pytest.param(
            observed(ca(250 * DAY), FRESH_LEAF), True, True, "the CA expires", id="ca-near-expiry"
        ),
        pytest.param(observed(ca(400 * DAY), FRESH_LEAF), True, True, "expired", id="ca-expired"),
        pytest.param(
            observed(CertFacts(NOW - DAY, NOW + DAY, "x", is_ca=False), FRESH_LEAF),
            True,
            True,
            "not a CA",
            id="ca-is-not-a-ca",
        ),
        # Clock skew: a replica whose clock runs a few minutes ahead issued these.
        pytest.param(
            observed(ca(-3 * timedelta(minutes=1)), leaf(-3 * timedelta(minutes=1))),
            False,
            False,
            None,
            id="slightly-not-yet-valid-is-tolerated",
        ),
        pytest.param(
            observed(FRESH_CA, leaf(-2 * DAY)),
            False,
            True,
            "not valid until",
            id="leaf-not-yet-valid",
        ),
        pytest.param(
            observed(ca(-2 * DAY), FRESH_LEAF), True, True, "not valid until", id="ca-not-yet-valid"
        ),
        pytest.param(
            observed(FRESH_CA, CertFacts(NOW, NOW, "l", frozenset(NAMES))),
            False,
            True,
            "empty validity",
            id="leaf-empty-validity",
        ),
    ],
)
def test_decision_table(state: Observed, new_ca: bool, new_leaf: bool, reason: str | None) -> None:
    decision = plan(NOW, state, NAMES, POLICY)
    assert (decision.new_ca, decision.new_leaf) == (new_ca, new_leaf)
    if reason is None:
        assert decision == Plan(), decision.reasons
    else:
        assert any(reason in r for r in decision.reasons), decision.reasons


def test_renewal_point_is_a_third_of_the_lifetime_before_expiry() -> None:
    cert = leaf(0 * DAY, days=90)
    assert certrotation.renew_at(cert) == NOW + 60 * DAY
    assert certrotation.renew_at(ca(0 * DAY, days=365)).date() == (NOW + 243 * DAY).date()


def test_extra_sans_do_not_force_a_renewal() -> None:
    # A replica with a shorter wanted list must not fight one with a longer list.
    wide = leaf(DAY, names=[*NAMES, "localhost"])
    assert plan(NOW, observed(FRESH_CA, wide), NAMES, POLICY) == Plan()


def test_san_comparison_ignores_case() -> None:
    upper = leaf(DAY, names=[n.upper() for n in NAMES])
    assert plan(NOW, observed(FRESH_CA, upper), NAMES, POLICY) == Plan()


# --- the trust bundle across a CA rotation ------------------------------------------------------


def test_ca_rotation_keeps_the_old_ca_behind_the_new_one() -> None:
    old = ca(250 * DAY, fp="old")
    decision = plan(NOW, observed(old, FRESH_LEAF), NAMES, POLICY)
    assert decision.new_ca and decision.new_leaf
    assert decision.keep == ("old",)


def test_after_rotation_the_bundle_is_stable_until_the_old_ca_expires() -> None:
    new, old = ca(DAY, fp="new"), ca(250 * DAY, fp="old")
    assert plan(NOW, observed(new, FRESH_LEAF, previous=(old,)), NAMES, POLICY) == Plan(
        keep=("old",)
    )


def test_an_expired_previous_ca_is_pruned() -> None:
    new, gone = ca(DAY, fp="new"), ca(400 * DAY, fp="gone")
    decision = plan(NOW, observed(new, FRESH_LEAF, previous=(gone,)), NAMES, POLICY)
    assert decision.rewrite_bundle and not decision.new_leaf and not decision.new_ca
    assert decision.keep == ()


def test_an_expired_ca_is_not_kept_when_it_is_replaced() -> None:
    decision = plan(NOW, observed(ca(400 * DAY, fp="dead"), FRESH_LEAF), NAMES, POLICY)
    assert decision.new_ca and decision.keep == ()


def test_bundle_drops_duplicates_and_non_cas_and_is_capped() -> None:
    active = ca(DAY, fp="a")
    older = [ca(n * DAY, fp=f"p{n}") for n in (100, 50, 200)]
    foreign_leaf = CertFacts(NOW - DAY, NOW + DAY, "leafy", is_ca=False)
    previous = (older[0], active, foreign_leaf, older[1], older[0], older[2])
    kept = certrotation.trust_bundle(NOW, previous, ("a",), limit=3)
    assert kept == ("p50", "p100")  # newest first, at most two behind the active CA


def test_has_newer_unknown_ca_detects_a_stale_view() -> None:
    ours = [ca(100 * DAY, fp="ours")]
    newer = ca(DAY, fp="theirs")
    older = ca(200 * DAY, fp="older")
    assert certrotation.has_newer_unknown_ca(NOW, [newer, *ours], ours)
    assert not certrotation.has_newer_unknown_ca(NOW, [older, *ours], ours)
    assert not certrotation.has_newer_unknown_ca(NOW, ours, ours)
    assert not certrotation.has_newer_unknown_ca(NOW, [newer], [])
    expired_newer = CertFacts(NOW - 10 * DAY, NOW - DAY, "x", is_ca=True)
    assert not certrotation.has_newer_unknown_ca(NOW, [expired_newer], ours)


# --- policy -------------------------------------------------------------------------------------


def test_default_policy_and_constants() -> None:
    assert (POLICY.ca_days, POLICY.leaf_days) == (365, 90)
    assert POLICY.renew_fraction == pytest.approx(1 / 3)
    assert certrotation.CHECK_INTERVAL.total_seconds() == 300


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ca_days": 0},
        {"renew_fraction": 1.0},
        {"leaf_days": 200},  # longer than a third of the CA's year: cut short by the CA
        {"max_bundle": 1},
    ],
)
def test_policy_rejects_unworkable_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RotationPolicy(**kwargs)  # type: ignore[arg-type]


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        plan(datetime(2030, 1, 1), observed(None, None), NAMES, POLICY)


def test_module_is_pure() -> None:
    source = Path(certrotation.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "collections", "dataclasses", "datetime"}, imported
