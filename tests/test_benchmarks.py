"""The benchmarks still run: `python -m benchmarks --quick` end to end (a smoke run).

Figures are not checked here (this machine is shared and noisy; the goals live in the
benchmark output, measured side by side); only that every benchmark runs and reports them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_quick_benchmarks_run_and_report_every_headline_figure(tmp_path: Path) -> None:
    env = {**os.environ, "BGGSCORE_BENCH_RESULTS": str(tmp_path)}
    env.pop("BGGSCORE_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "headline figures" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) - {"bigquery_cost"} == {"startup", "score", "detect", "embed", "adopt"}
    detect = summary["detect"]
    assert detect["incremental_games_scored"] > 0  # the daily run scored the refreshed games
    assert {r["selection"] for r in detect["history"]} == {"all years", "2024-2028"}
    assert all(r["one_join_floor_ms"] > 0 for r in detect["history"])
    adopt = summary["adopt"]  # production's pipelines: the predict calls, 1 and 2 workers
    assert [r["workers"] for r in adopt["score"]] == [1, 2]
    assert {r["games"] for r in adopt["score"]} == {adopt["predict"]["games"]}
    assert adopt["predict"]["seconds"] > 0 and adopt["peak_rss_mib"] > 0


def test_the_bigquery_cost_benchmark_runs_quick_and_reports_its_targets(tmp_path: Path) -> None:
    pytest.importorskip("bqemulator", reason="bqemulator is not installed")
    env = {**os.environ, "BGGSCORE_BENCH_RESULTS": str(tmp_path)}
    env.pop("BGGSCORE_HOME", None)
    result = subprocess.run(
        [sys.executable, "benchmarks/bigquery_cost.py", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "plan's query" in result.stdout and "targets (issue 15)" in result.stdout
    found = json.loads((tmp_path / "bigquery_cost.json").read_text())
    runs = {r["name"]: r for r in found["scenarios"]}
    assert set(runs) == {
        "no-op run",
        "daily run",
        "daily score --changed-only",
        "full score --all-years",
    }
    emb = {r["name"]: r for r in found["embedding_scenarios"]}  # production's pipelines
    assert set(emb) == {f"{name} (emb_*)" for name in runs}
    assert all(r["embedding_table_reads"] > 0 for r in emb.values())
    daily = runs["daily run"]
    assert daily["jobs"] == daily["queries"] + daily["scripts"] + daily["loads"] > 0
    assert daily["gb_billed"]["1 year"] > runs["no-op run"]["gb_billed"]["1 year"] > 0
    assert daily["jobs_with_cap"] == daily["query_jobs"]  # every query job capped
    assert found["plan_gb_billed"]["1 year"] > 0
    assert {t["result"] for t in found["targets"]} <= {"pass", "MISS", "n/a"}
