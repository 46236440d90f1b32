"""benchmarks/gpu_check.sh: its dry run (the same steps on the CPU at tiny shapes) passes and
leaves every result in one folder, and a failing or hanging step is recorded while the rest run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import Check, Plan

ROOT = Path(__file__).resolve().parents[2]


def test_the_dry_run_passes_and_writes_every_result_to_one_folder(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert summary["passed"] and summary["dry_run"] and summary["cut_short"] == []
    assert "Cut short: none" in (out / "summary.md").read_text()
    steps = {s["name"]: s for s in summary["steps"]}
    assert list(steps) == ["environment", "checkpoint", "cuda-tests", "throughput", "throughput-v2", "load"]
    assert all(s["status"] == "ok" for s in steps.values())
    for step in steps.values():
        for name in step["files"]:
            assert (out / name).is_file(), f"{step['name']} lists {name}, which is missing"
    assert "2 passed, 0 failed" in steps["cuda-tests"]["detail"]  # bfloat16 and generators, rehearsed on the CPU
    for generation in ("tiny", "tiny2"):
        table = (out / f"voxcpm-{generation}-cpu.md").read_text()
        assert "| 1 |" in table and "| 2 |" in table
    load = json.loads((out / "load.json").read_text())
    assert load["ok"] == load["sent"] > 0 and not load["errors"]
    assert "voxbatch_batches_total" in (out / "metrics.txt").read_text()
    assert "| load | ok |" in (out / "summary.md").read_text()
    assert not any(p.name == "model" for p in out.iterdir())  # the checkpoint is not left in the results


def test_a_failed_or_hung_step_is_recorded_and_the_next_still_runs(tmp_path):
    plan = Plan.for_run(dry_run=True)
    plan.step_limits_s.update({"throughput": 6, "load": 30})
    check = Check(tmp_path, plan, budget_s=60, dry_run=True)
    try:
        failed = check.run("cuda-tests", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], "a.log")
        hung = check.run("throughput", [sys.executable, "-c", "import time; time.sleep(60)"], "b.log")
        fine = check.run("load", [sys.executable, "-c", "print('fine')"], "c.log")
    finally:
        check.cleanup()
    assert (failed.status, hung.status, fine.status) == ("failed", "timed out", "ok")
    assert "exit status 3" in failed.detail and "boom" in failed.detail
    assert 5 <= hung.seconds < 30
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["failed", "timed out", "ok"] and not summary["passed"]
    assert summary["cut_short"] == ["throughput"]  # a failure is not a cut
    text = (tmp_path / "summary.md").read_text()
    assert "| cuda-tests | failed |" in text
    assert "Cut short: **throughput** (timed out: stopped after 6 s, its own limit)" in text


@pytest.mark.parametrize("dry_run", [False, True])
def test_the_step_limits_fit_the_budget(dry_run):
    """Steps that may each take their whole limit still all run: none is skipped for want of
    time because an earlier one overran (the GPU run must finish in under 8 minutes)."""
    plan = Plan.for_run(dry_run)
    assert sum(plan.step_limits_s.values()) <= plan.budget_s <= 480
    assert set(plan.step_limits_s) == {"environment", "checkpoint", "cuda-tests", "throughput", "throughput-v2", "load"}
