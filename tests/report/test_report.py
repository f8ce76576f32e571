"""`bggscore report` end to end on the demo's home: the numbers against the warehouse's own
rows, the job and window flags, the page's self-containment, GitHub's outputs, and the demo
that ends with a report."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl
import pytest
from tests.report.conftest import ReportDemo
from tests.support.output import parse_json
from tests.support.state import sql

from bggscore.report.page import CHARTS

ALL_CHARTS = [chart for charts in CHARTS.values() for chart in charts]
LANDING = "raw.ml_predictions_landing"


def test_the_demo_ends_with_a_report_of_its_runs(report_demo: ReportDemo) -> None:
    data = report_demo.data
    assert report_demo.page == report_demo.home / "report.html"
    assert report_demo.page.is_file()
    assert data["report"]["size_bytes"] == report_demo.page.stat().st_size < 5_000_000
    assert data["report"]["charts"] == ALL_CHARTS  # every section has something to show
    assert f"report: {report_demo.page}" in data["summary"]
    assert data["refresh"]["new"] > 0 and data["refresh"]["changed"] > 0
    incremental = data["incremental"]["score"]
    assert 0 < incremental["games_scored"] < data["score"]["games_scored"]
    assert data["incremental"]["embed"]["job_id"]
    assert "Traceback" not in report_demo.stderr


def _report(cli, *args: str) -> dict:
    result = cli("report", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return parse_json(result.stdout)


def _latest_rows(home: Path, job_id: str) -> pl.DataFrame:
    """Each game's newest landing row at the job, read here without the report's SQL."""
    rows = sql(home, f"SELECT * FROM {LANDING}")
    start = rows.filter(pl.col("job_id") == job_id)["score_ts"].max()
    return (
        rows.filter(pl.col("score_ts") <= start)
        .sort("score_ts", descending=True)
        .unique("game_id", keep="first")
    )


def test_the_numbers_are_the_warehouses(cli, report_home: Path, report_demo: ReportDemo) -> None:
    top = report_demo.data["similar"]["game_id"]
    doc = _report(cli, "-o", "page.html", "--game-id", str(top))
    job_id = report_demo.data["incremental"]["score"]["job_id"]
    assert doc["run"]["job"]["job_id"] == job_id  # the newest score job
    assert Path("page.html").is_file() and doc["output"] == "page.html"

    # 1. by stage and reason: a game is new when the job's row is its first
    landing = sql(report_home, f"SELECT job_id, game_id, score_ts FROM {LANDING}")
    first = landing.group_by("game_id").agg(pl.col("score_ts").min().alias("first"))
    mine = landing.filter(pl.col("job_id") == job_id).join(first, on="game_id")
    new = int((mine["score_ts"] == mine["first"]).sum())
    main = next(s for s in doc["run"]["stages"] if s["stage"] == "main")
    assert main["games"] == len(mine) == report_demo.data["incremental"]["score"]["games_scored"]
    assert main["by_reason"]["new"] == new > 0
    assert main["by_reason"]["features"] == len(mine) - new  # `demo refresh` changed them
    assert doc["run"]["models"]["rating"] == "rating:1"
    assert [r["command"] for r in doc["runs"]] == ["score", "embed", "score", "embed"]

    # 2. what moved: the rescored games, and the largest rating move
    moved = doc["moved"]
    assert moved["rescored"] == len(mine) - new
    both = (
        sql(report_home, f"SELECT job_id, game_id, score_ts, predicted_rating FROM {LANDING}")
        .sort("score_ts")
        .with_columns(pl.col("predicted_rating").shift(1).over("game_id").alias("before"))
        .filter((pl.col("job_id") == job_id) & pl.col("before").is_not_null())
        .with_columns((pl.col("predicted_rating") - pl.col("before")).abs().alias("change"))
        .sort("change", descending=True)
    )
    best = moved["outcomes"]["rating"]["top"][0]
    assert best["game_id"] == both["game_id"][0]
    assert abs(best["change"]) == pytest.approx(both["change"][0], rel=1e-3)

    # 3. how good: rating RMSE and coverage over the games with 25+ ratings
    rows = _latest_rows(report_home, job_id).join(
        sql(
            report_home, "SELECT game_id, average_rating, users_rated FROM analytics.games_features"
        ),
        on="game_id",
    )
    rated = rows.filter((pl.col("users_rated") >= 25) & (pl.col("average_rating") > 0))
    errors = rated["predicted_rating"] - rated["average_rating"]
    rating = next(o for o in doc["good"]["outcomes"] if o["outcome"] == "rating")
    assert rating["games"] == len(rated)
    assert rating["rmse"] == pytest.approx(math.sqrt(float((errors**2).mean())), rel=1e-3)
    assert rating["rmse"] < rating["mean_rmse"]  # the demo's models beat the mean
    inside = rated.filter(
        (pl.col("average_rating") >= pl.col("rating_lower_90"))
        & (pl.col("average_rating") <= pl.col("rating_upper_90"))
    )
    assert rating["coverage"] == pytest.approx(len(inside) / len(rated), rel=1e-3)
    assert 0.7 < rating["coverage"] <= 1.0

    # 4. how sure: the widest rating interval of every game
    widest = rows.with_columns(
        (pl.col("rating_upper_90") - pl.col("rating_lower_90")).alias("width")
    ).sort(["width", "game_id"], descending=[True, False])
    assert doc["sure"]["least_sure"]["rating"][0]["game_id"] == widest["game_id"][0]

    # 5. the map and the neighbours `similar` finds
    similar = parse_json(cli("similar", str(top), "--json").stdout)
    assert doc["neighbours"][0]["neighbours"] == similar["neighbours"]
    shown = {p["game_id"] for p in doc["map"]["points"]}
    assert {top, *(n["game_id"] for n in similar["neighbours"])} <= shown
    assert doc["map"]["shown"] == len(shown) <= 3000


def test_an_older_job_and_a_window(cli, report_home: Path, report_demo: ReportDemo) -> None:
    first = report_demo.data["score"]["job_id"]
    doc = _report(cli, "--job", first)
    assert doc["run"]["job"]["job_id"] == first
    main = next(s for s in doc["run"]["stages"] if s["stage"] == "main")
    assert main["by_reason"]["new"] == main["games"] == report_demo.data["score"]["games_scored"]
    assert doc["moved"]["rescored"] == 0  # nothing had been scored before it
    assert doc["run"]["job"]["job_id"] in {r["job_id"] for r in doc["runs"]}
    assert report_demo.data["incremental"]["score"]["job_id"] not in {
        r["job_id"] for r in doc["runs"]
    }  # the window ends at the job

    embed = report_demo.data["embed"]["job_id"]
    doc = _report(cli, "--job", embed)  # an embed job: its stages, no predictions of its own
    assert [s["stage"] for s in doc["run"]["stages"]] == ["text-embeddings", "game-embeddings"]
    assert doc["moved"]["rescored"] == 0

    started = doc["runs"][0]["started_at"]
    later = _report(cli, "--since", started[:10])
    assert len(later["runs"]) == 4 and later["window"]["since"].startswith(started[:10])


def test_without_intervals_or_earlier_scores_the_sections_say_so(cli, embedded_home: Path) -> None:
    """The demo's first half alone (one full score, no intervals): the page still draws what
    it has and says what is missing."""
    doc = _report(cli)
    assert doc["moved"]["rescored"] == 0
    assert doc["good"]["intervals"] is False and doc["sure"]["intervals"] is False
    assert set(doc["charts"]) == {"run-stages", "runs-over-time", "predicted-vs-actual", "map"}
    page = Path("bggscore-report.html").read_text(encoding="utf-8")
    assert "score with --intervals N" in page
    assert "No game of this job had been scored before" in page
    assert "Pass --game-id N" in page


def test_the_page_is_self_contained_and_escapes_names(
    cli, report_home: Path, report_demo: ReportDemo
) -> None:
    top = report_demo.data["similar"]["game_id"]
    hostile = '</script><img src=x onerror="alert(1)">&'
    sql(
        report_home,
        "UPDATE analytics.games_features SET name = $n WHERE game_id = $g",
        {"n": hostile, "g": top},
    )
    doc = _report(cli, "--game-id", str(top))
    page = Path("bggscore-report.html").read_text(encoding="utf-8")
    assert doc["neighbours"][0]["name"] == hostile
    assert hostile not in page  # neither in the tables nor in the charts' data
    assert page.lower().count("<script") == page.lower().count("</script") == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page.lower() and "@import" not in page
    specs = json.loads(
        page.split('<script type="application/json" id="bggscore-specs">')[1].split("</script>")[0]
    )
    assert list(specs) == doc["charts"]
    assert all(
        spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v")
        for spec in specs.values()
    )
    # the charts draw the document's numbers: the map's points are the --json's
    (points,) = specs["map"]["datasets"].values()
    assert [p["game_id"] for p in points] == [p["game_id"] for p in doc["map"]["points"]]


def test_every_chart_is_valid_vega_lite(cli, report_home: Path, report_demo: ReportDemo) -> None:
    from bggscore.report import charts

    doc = _report(cli, "--game-id", str(report_demo.data["similar"]["game_id"]))
    specs = charts.specs(doc, validate=True)  # altair checks each against Vega-Lite's schema
    assert list(specs) == ALL_CHARTS
    for name, spec in specs.items():
        assert spec["datasets"], name
        assert all(rows for rows in spec["datasets"].values()), name


def test_github_outputs_name_the_page_and_its_artifact(
    cli, report_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outputs, summary = tmp_path / "out", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = cli("report", "--output", "bggscore-report.html")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("report of job ")
    text = summary.read_text()
    assert "`bggscore-report.html`" in text and "artifacts as `bggscore-report`" in text
    assert "| rating |" in text
    lines = outputs.read_text().splitlines()
    assert "report=bggscore-report.html" in lines
    assert any(line.startswith("job_id=") and len(line) > 7 for line in lines)


def test_a_failed_report_leaves_the_old_page(cli, report_home: Path) -> None:
    Path("page.html").write_text("old")
    result = cli("report", "-o", "page.html", "--game-id", "999999999")
    assert result.exit_code == 2
    assert Path("page.html").read_text() == "old"
    assert [p.name for p in Path.cwd().iterdir()] == ["page.html"]  # no partial file left
