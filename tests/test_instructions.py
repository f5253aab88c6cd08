"""benchmarks.instructions: instructions per review of a whole server under callgrind. The
count itself needs valgrind and wrk, and runs when both are found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import instructions

# What callgrind writes: a header, then cost lines; `totals:` closes each dump.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 30228
part: 1
desc: Trigger: dump
events: Ir
summary: 0
fn=0x1
3 100
totals: {total}
"""


def test_the_totals_of_every_dump_are_added(tmp_path: Path) -> None:
    counted = tmp_path / "callgrind.out.1"
    counted.write_text(DUMP.format(total=821394390))
    at_exit = tmp_path / "callgrind.out"  # counting was off by then
    at_exit.write_text(DUMP.format(total=0))
    assert instructions.callgrind_totals([at_exit, counted]) == 821394390


def test_a_missing_tool_is_named_with_its_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "valgrind" else tool)
    assert instructions.main(["--seconds", "1"]) == 2
    assert "needs valgrind: apt-get install valgrind" in capsys.readouterr().err


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in instructions.TOOLS),
    reason="needs valgrind (callgrind_control) and wrk: apt-get install valgrind wrk",
)
@pytest.mark.timeout(600)
def test_a_review_costs_the_server_more_instructions_than_the_constant_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert instructions.main(["--only", "VS allowed", "--seconds", "2"]) == 0
    rows = {
        line.rsplit(None, 2)[0].strip(): line.split()[-2:]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("validate", "baseline")) and "per review" not in line
    }
    review, base = rows["validate VS allowed"], rows["baseline (constant answer)"]
    assert int(review[0].replace(",", "")) > int(base[0].replace(",", "")) > 10_000
    assert float(review[1]) > 1.0 and float(base[1]) == 1.0
