"""The report's charts: Vega-Lite specs built with altair from the report's numbers alone
(the ``--json`` document's sections), one spec per chart id. Only `bggscore report` (and the
demo's report) imports this module: altair costs ~0.3 s to import."""

from __future__ import annotations

import functools
import math
from typing import Any

import altair as alt

from bggscore.report.numbers import REASONS
from bggscore.warehouse.queries import REPORT_OUTCOMES

# one colour per reason, the same in every chart
REASON_COLOURS = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#bab0ac")
REASON_SCALE = alt.Scale(domain=list(REASONS), range=list(REASON_COLOURS))
LABELS = {
    "complexity": "complexity (average weight)",
    "rating": "rating (average)",
    "users_rated": "users rated (log1p)",
    "geek_rating": "geek rating (bayes average)",
}
WIDTH = 300  # of one small chart; two sit side by side
NAME_LIMIT = 180  # pixels of a game's name on an axis, then "…"


# The rows of the chart being built, by dataset name: charts name their data and the rows
# join the spec after altair has built and validated it (validating every row through
# Vega-Lite's JSON schema costs seconds at a few thousand points).
_ROWS: dict[str, list[dict[str, Any]]] = {}


def _data(rows: list[dict[str, Any]]) -> alt.NamedData:
    name = f"data-{len(_ROWS)}"
    _ROWS[name] = rows
    return alt.NamedData(name=name)


def _one(build: Any, *args: Any, validate: bool = False) -> dict[str, Any]:
    """One chart's Vega-Lite spec, its rows inline as datasets. ``validate``: check it
    against Vega-Lite's JSON schema (the tests do; ~0.1 s a chart)."""
    _ROWS.clear()
    try:
        spec = build(*args).to_dict(validate=validate)
        spec["datasets"] = dict(_ROWS)
    finally:
        _ROWS.clear()
    return spec


def _grid(charts: list[Any]) -> Any:
    return alt.concat(*charts, columns=2).resolve_scale(color="shared")


def run_stages(run: dict[str, Any]) -> Any:
    rows = [
        {"stage": item["stage"], "reason": reason, "games": n, "order": REASONS.index(reason)}
        for item in run["stages"]
        for reason, n in item["by_reason"].items()
        if n
    ]
    stages = [item["stage"] for item in run["stages"]]
    return (
        alt.Chart(_data(rows), title="games scored by stage and reason")
        .mark_bar()
        .encode(
            y=alt.Y("stage:N", sort=stages, title=None),
            x=alt.X("games:Q", title="games", stack="zero"),
            color=alt.Color("reason:N", scale=REASON_SCALE, title="reason"),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("stage:N"),
                alt.Tooltip("reason:N"),
                alt.Tooltip("games:Q", format=","),
            ],
        )
        .properties(width=2 * WIDTH, height=28 * max(len(stages), 1))
    )


def _run_label(run: dict[str, Any]) -> str:
    started = (run["started_at"] or "")[5:16].replace("T", " ")  # MM-DD HH:MM
    return f"{started} {run['job_id'][-8:]}"


def runs_over_time(runs: list[dict[str, Any]]) -> Any:
    rows = []
    order = [_run_label(run) for run in runs]
    for run in runs:
        for stage, reasons in run["stages"].items():
            for reason, n in reasons.items():
                if n:
                    rows.append(
                        {
                            "run": _run_label(run),
                            "job_id": run["job_id"],
                            "stage": stage,
                            "reason": reason,
                            "games": n,
                            "order": REASONS.index(reason),
                        }
                    )
    return (
        alt.Chart(_data(rows))
        .mark_bar()
        .encode(
            x=alt.X(
                "run:N",
                sort=order,
                title="run (UTC start, job)",
                axis=alt.Axis(labelAngle=-30, labelLimit=120),
            ),
            # a square-root scale: a run of 200 games still shows beside one of 500,000
            y=alt.Y("games:Q", title="games (square root)", scale=alt.Scale(type="sqrt")),
            color=alt.Color("reason:N", scale=REASON_SCALE, title="reason"),
            order=alt.Order("order:Q"),
            tooltip=[
                alt.Tooltip("job_id:N"),
                alt.Tooltip("stage:N"),
                alt.Tooltip("reason:N"),
                alt.Tooltip("games:Q", format=","),
            ],
        )
        .properties(width=2 * WIDTH, height=70)
        .facet(row=alt.Row("stage:N", title=None, sort=_stage_order(runs)))
        .resolve_scale(x="independent")  # each stage's row shows the runs of its command
        .properties(title="runs of the window: games per run, by stage and reason")
    )


def _stage_order(runs: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        seen.update(dict.fromkeys(run["stages"]))
    return list(seen)


def moved(section: dict[str, Any]) -> Any:
    charts = []
    for outcome in REPORT_OUTCOMES:
        top = section["outcomes"][outcome]["top"]
        if not top:
            continue
        rows = [
            {**row, "rank": i, "label": f"{row['name']} ({row['game_id']})"}
            for i, row in enumerate(top)
        ]
        base = alt.Chart(_data(rows), title=LABELS[outcome].split(" (")[0]).encode(
            y=alt.Y(
                "label:N",
                sort=alt.SortField("rank"),
                title=None,
                axis=alt.Axis(labelLimit=NAME_LIMIT),
            ),
        )
        tooltip = [
            alt.Tooltip("name:N"),
            alt.Tooltip("game_id:Q"),
            alt.Tooltip("reason:N"),
            alt.Tooltip("old:Q"),
            alt.Tooltip("new:Q"),
            alt.Tooltip("change:Q"),
        ]
        line = base.mark_rule(color="#888").encode(
            x=alt.X(
                "old:Q",
                title="old → new",
                scale=alt.Scale(zero=False),
                axis=alt.Axis(tickCount=5),
            ),
            x2=alt.X2("new"),
        )
        old = base.mark_point(filled=False, color="#555").encode(x=alt.X("old:Q"), tooltip=tooltip)
        new = base.mark_point(filled=True, size=60).encode(
            x=alt.X("new:Q"),
            color=alt.Color("reason:N", scale=REASON_SCALE, title="reason"),
            tooltip=tooltip,
        )
        charts.append(alt.layer(line, old, new).properties(width=WIDTH - 60, height=18 * len(rows)))
    return _grid(charts)


def predicted_vs_actual(section: dict[str, Any]) -> Any:
    charts = []
    for outcome in REPORT_OUTCOMES:
        cells = [c for c in section["cells"] if c["outcome"] == outcome]
        if not cells:
            continue
        low = min(min(c["x"], c["y"]) for c in cells)
        high = max(max(c["x2"], c["y2"]) for c in cells)
        label = LABELS[outcome]
        rect = (
            alt.Chart(_data(cells))
            .mark_rect()
            .encode(
                x=alt.X("x:Q", title=f"predicted {label}", scale=alt.Scale(zero=False)),
                x2=alt.X2("x2"),
                y=alt.Y("y:Q", title=f"actual {label}", scale=alt.Scale(zero=False)),
                y2=alt.Y2("y2"),
                color=alt.Color(
                    "games:Q", scale=alt.Scale(type="log", scheme="blues"), title="games"
                ),
                tooltip=[
                    alt.Tooltip("games:Q", format=","),
                    alt.Tooltip("x:Q"),
                    alt.Tooltip("y:Q"),
                ],
            )
        )
        diagonal = (
            alt.Chart(_data([{"a": low, "b": low}, {"a": high, "b": high}]))
            .mark_line(color="#e45756", strokeDash=[4, 3])
            .encode(x=alt.X("a:Q"), y=alt.Y("b:Q"))
        )
        charts.append(
            alt.layer(rect, diagonal, title=label).properties(width=WIDTH - 40, height=WIDTH - 40)
        )
    return alt.concat(*charts, columns=2).resolve_scale(color="independent")


def coverage(section: dict[str, Any]) -> Any:
    rows = [{**row, "label": LABELS[row["outcome"]]} for row in section["coverage_by_year"]]
    lowest = min((row["coverage"] for row in rows if row["coverage"] is not None), default=0.5)
    low = min(0.5, math.floor(lowest * 10) / 10)
    lines = (
        alt.Chart(_data(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("year:O", title="year published"),
            y=alt.Y(
                "coverage:Q",
                title="actuals inside the 90% interval",
                scale=alt.Scale(domain=[low, 1]),
                axis=alt.Axis(format="%"),
            ),
            color=alt.Color("outcome:N", sort=list(REPORT_OUTCOMES), title="outcome"),
            tooltip=[
                alt.Tooltip("outcome:N"),
                alt.Tooltip("year:O"),
                alt.Tooltip("coverage:Q", format=".1%"),
                alt.Tooltip("games:Q", format=","),
            ],
        )
    )
    target = (
        alt.Chart(_data([{"target": 0.9}]))
        .mark_rule(color="#444", strokeDash=[4, 3])
        .encode(y=alt.Y("target:Q"))
    )
    return alt.layer(lines, target, title="coverage by year (dashed: 90%)").properties(
        width=2 * WIDTH, height=200
    )


def widths(section: dict[str, Any]) -> Any:
    charts = []
    for outcome in REPORT_OUTCOMES:
        rows = [r for r in section["by_ratings"] if r["outcome"] == outcome]
        if not rows:
            continue
        x = alt.X("ratings_mid:Q", title="users rated", scale=alt.Scale(type="log"))
        band = (
            alt.Chart(_data(rows))
            .mark_area(opacity=0.3)
            .encode(x=x, y=alt.Y("q25:Q", title="interval width"), y2=alt.Y2("q75"))
        )
        line = (
            alt.Chart(_data(rows))
            .mark_line(point=True)
            .encode(
                x=x,
                y=alt.Y("median:Q"),
                tooltip=[
                    alt.Tooltip("ratings_from:Q"),
                    alt.Tooltip("ratings_to:Q"),
                    alt.Tooltip("games:Q", format=","),
                    alt.Tooltip("median:Q"),
                    alt.Tooltip("q25:Q"),
                    alt.Tooltip("q75:Q"),
                ],
            )
        )
        title = LABELS[outcome] + (" (log1p scale)" if section["width_scale"][outcome] else "")
        charts.append(alt.layer(band, line, title=title).properties(width=WIDTH - 40, height=160))
    return _grid(charts)


def least_sure(section: dict[str, Any]) -> Any:
    charts = []
    for outcome in REPORT_OUTCOMES:
        top = section["least_sure"][outcome]
        if not top:
            continue
        rows = [
            {**row, "rank": i, "label": f"{row['name']} ({row['game_id']})"}
            for i, row in enumerate(top)
        ]
        base = alt.Chart(_data(rows), title=LABELS[outcome].split(" (")[0]).encode(
            y=alt.Y(
                "label:N",
                sort=alt.SortField("rank"),
                title=None,
                axis=alt.Axis(labelLimit=NAME_LIMIT),
            ),
            tooltip=[
                alt.Tooltip("name:N"),
                alt.Tooltip("ratings:Q"),
                alt.Tooltip("predicted:Q"),
                alt.Tooltip("lower:Q"),
                alt.Tooltip("upper:Q"),
                alt.Tooltip("width:Q"),
            ],
        )
        if outcome == "users_rated":  # counts: a log-like scale that keeps 0
            scale = alt.Scale(type="symlog")
            axis = alt.Axis(values=[0, 10, 100, 1000, 10_000, 100_000], format="~s")
        else:
            scale, axis = alt.Scale(zero=False), alt.Axis(tickCount=5)
        rule = base.mark_rule(strokeWidth=2, color="#4c78a8").encode(
            x=alt.X("lower:Q", title="90% interval", scale=scale, axis=axis),
            x2=alt.X2("upper"),
        )
        point = base.mark_point(filled=True, color="#222").encode(x=alt.X("predicted:Q"))
        charts.append(alt.layer(rule, point).properties(width=WIDTH - 60, height=18 * len(rows)))
    return _grid(charts)


def game_map(section: dict[str, Any], asked: list[int], highlighted: list[int]) -> Any:
    """The map; ``asked`` (the --game-id games) named, they and ``highlighted`` ringed."""
    marked = set(highlighted) | set(asked)
    xs = [p["x"] for p in section["points"] if p["x"] is not None]
    middle = (min(xs) + max(xs)) / 2 if xs else 0.0
    points = [
        {
            **point,
            "marked": point["game_id"] in marked,
            "asked": point["game_id"] in asked,
            "right": (point["x"] or 0.0) > middle,  # its name goes to its left
        }
        for point in section["points"]
    ]
    colour = alt.param(
        name="colour_by",
        value="complexity",
        bind=alt.binding_radio(options=["complexity", "rating"], name="colour by predicted "),
    )
    base = alt.Chart(_data(points)).transform_calculate(value="datum[colour_by]")
    tooltip = [
        alt.Tooltip("name:N"),
        alt.Tooltip("game_id:Q"),
        alt.Tooltip("complexity:Q"),
        alt.Tooltip("rating:Q"),
    ]
    dots = (
        base.mark_circle(size=18, opacity=0.7)
        .encode(
            x=alt.X("x:Q", title="embedding map x", axis=alt.Axis(labels=False)),
            y=alt.Y("y:Q", title="embedding map y", axis=alt.Axis(labels=False)),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), title="predicted"),
            tooltip=tooltip,
        )
        .add_params(colour)
    )
    layers = [dots]
    if marked:
        chosen = base.transform_filter("datum.marked")
        named = base.transform_filter("datum.asked && !datum.right")
        named_left = base.transform_filter("datum.asked && datum.right")
        layers.append(
            chosen.mark_point(size=120, color="#e45756", strokeWidth=2).encode(
                x=alt.X("x:Q"), y=alt.Y("y:Q"), tooltip=tooltip
            )
        )
        for where, align, dx in ((named, "left", 8), (named_left, "right", -8)):
            layers.append(
                where.mark_text(align=align, dx=dx, dy=-8, fontSize=12, fontWeight="bold").encode(
                    x=alt.X("x:Q"), y=alt.Y("y:Q"), text=alt.Text("name:N")
                )
            )
    return (
        alt.layer(*layers, title=f"{section['shown']:,} of {section['games']:,} games")
        .properties(width=2 * WIDTH + 60, height=420)
        .interactive()
    )


def neighbours(found: list[dict[str, Any]]) -> Any:
    charts = []
    for game in found:
        rows = [
            {**n, "rank": i, "label": f"{n['name']} ({n['game_id']})"}
            for i, n in enumerate(game["neighbours"])
        ]
        charts.append(
            alt.Chart(_data(rows), title=f"most like {game['name']} ({game['game_id']})")
            .mark_bar(color="#72b7b2")
            .encode(
                y=alt.Y(
                    "label:N",
                    sort=alt.SortField("rank"),
                    title=None,
                    axis=alt.Axis(labelLimit=NAME_LIMIT),
                ),
                x=alt.X("similarity:Q", title="cosine similarity", scale=alt.Scale(domain=[0, 1])),
                tooltip=[
                    alt.Tooltip("name:N"),
                    alt.Tooltip("game_id:Q"),
                    alt.Tooltip("similarity:Q", format=".3f"),
                ],
            )
            .properties(width=WIDTH - 60, height=18 * max(len(rows), 1))
        )
    return alt.concat(*charts, columns=2)


def specs(doc: dict[str, Any], validate: bool = False) -> dict[str, dict[str, Any]]:
    """Chart id -> Vega-Lite spec, for each chart the document has data for."""
    charts: dict[str, dict[str, Any]] = {}
    _spec = functools.partial(_one, validate=validate)
    if doc["run"]["stages"]:
        charts["run-stages"] = _spec(run_stages, doc["run"])
    if doc["runs"]:
        charts["runs-over-time"] = _spec(runs_over_time, doc["runs"])
    if any(item["top"] for item in doc["moved"]["outcomes"].values()):
        charts["moved"] = _spec(moved, doc["moved"])
    if doc["good"]["cells"]:
        charts["predicted-vs-actual"] = _spec(predicted_vs_actual, doc["good"])
    if doc["good"]["coverage_by_year"]:
        charts["coverage"] = _spec(coverage, doc["good"])
    if doc["sure"]["by_ratings"]:
        charts["widths"] = _spec(widths, doc["sure"])
        charts["least-sure"] = _spec(least_sure, doc["sure"])
    if doc["map"]["points"]:
        asked = [g["game_id"] for g in doc["neighbours"]]
        near = [n["game_id"] for g in doc["neighbours"] for n in g["neighbours"]]
        charts["map"] = _spec(game_map, doc["map"], asked, near)
    if doc["neighbours"]:
        charts["neighbours"] = _spec(neighbours, doc["neighbours"])
    return charts
