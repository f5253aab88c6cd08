"""Under load through the real API server: a few hundred concurrent dry-run creates of mixed
allowed and denied objects get exactly the answers they get one at a time, and none errors.
(How long they take is measured by benchmarks/apiserver_load.py, not here.)"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.harness import Answer, Cluster, dry_run_create, load_mix

REQUESTS = 300
WORKERS = 24


def test_concurrent_dry_runs_get_the_sequential_answers(cluster: Cluster) -> None:
    objects = load_mix("tenant-a", "tenant-b", tag="e2e-load")
    with cluster.api() as api:
        expected = [dry_run_create(api, obj) for obj in objects]
    # The mix is what it claims: admitted (some mutated) and denied by the webhook.
    assert Counter(answer.status for answer in expected) == {201: 4, 403: 3}
    assert all("tenant-guard" in a.message for a in expected if a.status == 403)

    with cluster.api() as api, ThreadPoolExecutor(WORKERS) as pool:  # one connection each

        def send(index: int) -> tuple[int, Answer]:
            which = index % len(objects)
            obj: dict[str, Any] = objects[which]
            return which, dry_run_create(api, obj)

        answers = list(pool.map(send, range(REQUESTS)))
    wrong = [(objects[i]["metadata"]["name"], a) for i, a in answers if a != expected[i]]
    assert not wrong, f"{len(wrong)} of {REQUESTS} answers differ, first: {wrong[0]}"
