"""Settling a long-lived structure (webhook.memory): frozen out of the collector's way, and
the memory its building freed given back to the operating system."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from webhook import memory

GLIBC = sys.platform == "linux" and memory._TRIM is not None

# In a process of its own: the freeze and the heap it measures must be the test's alone.
SCRIPT = textwrap.dedent(
    """
    import gc
    from webhook.memory import settle

    def rss_kb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    # 60 MB of 1 kB strings: glibc serves them from the heap, not from mmap, so freeing
    # them leaves the pages mapped. The one kept at the end stops free() trimming the top.
    garbage = [str(i).zfill(1000) for i in range(60_000)]
    kept = str(-1).zfill(1000)
    del garbage
    before = rss_kb()
    frozen_before = gc.get_freeze_count()
    settle()
    print(before, rss_kb(), frozen_before, gc.get_freeze_count(), len(kept))
    """
)


def _run() -> tuple[int, int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, after, frozen_before, frozen_after, _ = map(int, out)
    return before, after, frozen_before, frozen_after


def test_settle_freezes_what_survives() -> None:
    _, _, frozen_before, frozen_after = _run()
    assert frozen_after > frozen_before


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's; other C libraries lack it")
def test_settle_gives_freed_heap_pages_back() -> None:
    before, after, _, _ = _run()
    assert before - after > 30_000, f"RSS {before} kB -> {after} kB"


def test_without_malloc_trim_settle_still_freezes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    memory.gc.unfreeze()
    try:
        memory.settle()
        assert memory.gc.get_freeze_count() > 0
    finally:
        memory.gc.unfreeze()
