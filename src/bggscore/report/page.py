"""The report's one HTML file: the numbers as tables, the charts as Vega-Lite specs, and
Vega, Vega-Lite and vega-embed inlined from vl-convert-python's bundle (read at run time
from the installed package, never kept in the repository), so the page needs no network.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from bggscore.report.numbers import REASONS

BUNDLE_FORMAT = "bggscore-vega-bundle 1"
# what the bundle's snippet does: the three libraries as globals, for the page's script
GLOBALS = "window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;"
SECTIONS = (
    ("run", "1. The run"),
    ("moved", "2. What moved"),
    ("good", "3. How good"),
    ("sure", "4. How sure"),
    ("map", "5. Where games sit"),
)
# which section each chart belongs to, in the order they are drawn
CHARTS = {
    "run": ("run-stages", "runs-over-time"),
    "moved": ("moved",),
    "good": ("predicted-vs-actual", "coverage"),
    "sure": ("widths", "least-sure"),
    "map": ("map", "neighbours"),
}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
  background:#fafafa}
header{background:#243447;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;color:#cfd8e3}
nav a{color:#fff;margin-right:14px}
main{padding:8px 32px 40px;max-width:1100px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:18px 0;
  padding:4px 20px 16px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:6px}
table{border-collapse:collapse;margin:8px 0 14px}
th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
.chart{margin:10px 0 18px;min-height:40px}
.note{color:#666;font-style:italic}
code{background:#f1f1f1;padding:0 3px;border-radius:3px}
"""

# Draws every chart; body[data-rendered] says when all are done (the browser test waits
# for it), each chart's data-rendered says how it went.
SCRIPT = """
(function () {
  var specs = JSON.parse(document.getElementById("bggscore-specs").textContent);
  var charts = Array.prototype.slice.call(document.querySelectorAll("[data-chart]"));
  Promise.all(charts.map(function (el) {
    return vegaEmbed(el, specs[el.dataset.chart], {renderer: "svg", actions: false})
      .then(function () { el.dataset.rendered = "ok"; })
      .catch(function (error) {
        el.dataset.rendered = "error";
        el.textContent = "this chart could not be drawn: " + error;
        console.error("bggscore report: chart " + el.dataset.chart + ": " + error);
      });
  })).then(function () { document.body.dataset.rendered = "done"; });
})();
"""


@functools.cache
def bundle(vl_version: str | None = None) -> str:
    """vega, vega-lite and vega-embed as one script, from the installed vl-convert-python
    (for the Vega-Lite version altair writes specs for, when the bundle has it). Making it
    takes vl-convert 1-3 s, so it is kept in the user's cache folder, per version."""
    import vl_convert

    if vl_version not in vl_convert.get_vegalite_versions():
        vl_version = None  # the bundle's newest
    path = _bundle_file(vl_version)
    script = _read_bundle(path) if path is not None else None
    if script is None:
        script = vl_convert.javascript_bundle(GLOBALS, vl_version=vl_version)
        if path is not None:
            _write_bundle(path, script)
    if "</script" in script.lower():  # would end the inline script early
        raise RuntimeError("vl-convert's bundle contains '</script': cannot inline it")
    return script


def _bundle_file(vl_version: str | None) -> Path | None:
    from importlib.metadata import PackageNotFoundError, version

    from bggscore.warehouse.sql import cache_folder

    folder = cache_folder()
    if folder is None:
        return None
    try:
        made_by = version("vl-convert-python")
    except PackageNotFoundError:
        return None  # no version to key the file on: make the bundle every time
    made = f"{BUNDLE_FORMAT}|{made_by}|{vl_version}|{GLOBALS}"
    key = hashlib.sha256(made.encode()).hexdigest()[:24]
    return folder.parent / "report" / f"vega-bundle-{key}.js"


def _private(path: Path) -> bool:
    """Only this user could have written it (POSIX): the page runs the script as it is."""
    if not hasattr(os, "getuid"):
        return True  # Windows: the per-user LOCALAPPDATA folder
    info = os.stat(path)
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _read_bundle(path: Path) -> str | None:
    """The kept bundle, or None (missing, unreadable, not ours, cut short)."""
    try:
        if not (_private(path.parent) and _private(path)):
            return None
        header, _, body = path.read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeError, ValueError):
        return None
    if header != f"// {BUNDLE_FORMAT} {path.stem} {len(body)}":
        return None
    return body


def _write_bundle(path: Path, script: str) -> None:
    """Keep the bundle: written whole under a temporary name, then moved into place."""
    temporary = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent):
            return
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".js", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(f"// {BUNDLE_FORMAT} {path.stem} {len(script)}\n{script}")
        os.replace(temporary, path)
        temporary = None
    except OSError:
        pass  # a read-only or full disk: make it again next time
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def vega_lite_version() -> str | None:
    """The Vega-Lite minor version altair targets ("6.4" from "v6.4.1")."""
    import altair

    parts = altair.SCHEMA_VERSION.lstrip("v").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def _json_script(value: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' left to end it early."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _number(value: Any, digits: str = ",.4g") -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return format(value, digits)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _chart(name: str, specs: dict[str, Any]) -> str:
    return f'<div class="chart" data-chart="{name}"></div>' if name in specs else ""


def _run(doc: dict[str, Any], specs: dict[str, Any]) -> str:
    run, parts = doc["run"], []
    job = run["job"]
    if job is None:
        parts.append(_note("No job to describe: nothing was scored yet in this window."))
    else:
        facts = [
            ["job", job["job_id"]],
            ["command", job["command"]],
            ["status", job["status"]],
            ["started (UTC)", job["started_at"] or "–"],
            ["seconds", _number(job["seconds"])],
            ["games", _number(job["games"])],
        ]
        facts += [[f"model: {kind}", ref] for kind, ref in run["models"].items()]
        parts.append(_table(["", ""], facts))
        rows = [[s["stage"], *(_number(s["by_reason"][r]) for r in REASONS)] for s in run["stages"]]
        parts.append(_table(["stage", *REASONS], rows))
        parts.append(_chart("run-stages", specs))
    window = doc["window"]
    parts.append(
        f"<h3>Runs from {escape(window['since'][:10])} to {escape(window['until'][:10])}</h3>"
    )
    parts.append(_chart("runs-over-time", specs) or _note("No runs in this window."))
    parts.append(
        _note(
            "A reason is read from each game's history rows: new (no earlier row), features "
            "(another feature hash), model (another model), upstream (main: another "
            "complexity), other (the same recorded inputs: a full rerun, or an upstream "
            "output the table does not record)."
        )
    )
    return "".join(parts)


def _moved(doc: dict[str, Any], specs: dict[str, Any]) -> str:
    moved = doc["moved"]
    if not moved["rescored"]:
        return _note("No game of this job had been scored before: nothing to compare.")
    rows = [
        [
            outcome,
            _number(item["changed"]),
            _number(item["mean_abs_change"]),
            "log1p" if item["scale"] else "",
        ]
        for outcome, item in moved["outcomes"].items()
    ]
    reasons = ", ".join(f"{n:,} {r}" for r, n in moved["by_reason"].items() if n)
    return (
        f"<p>{moved['rescored']:,} games of this job had an earlier score ({escape(reasons)}). "
        "The dots: hollow the previous prediction, filled the new one, coloured by reason.</p>"
        + _table(["outcome", "games that changed", "mean |change|", "scale"], rows)
        + _chart("moved", specs)
    )


def _good(doc: dict[str, Any], specs: dict[str, Any]) -> str:
    good = doc["good"]
    rows = [
        [
            item["outcome"] + (" (log1p)" if item["scale"] else ""),
            _number(item["games"]),
            _number(item["rmse"]),
            _number(item["mean_rmse"]),
            _number(item["mae"]),
            _number(item["mean_mae"]),
            _number(item["r2"]),
            "–" if item["coverage"] is None else f"{item['coverage']:.1%}",
        ]
        for item in good["outcomes"]
    ]
    headers = ["outcome", "games", "RMSE", "mean's RMSE", "MAE", "mean's MAE", "R²", "coverage"]
    parts = [
        "<p>Each game's newest prediction at the job, against the warehouse's actuals (the "
        "games each outcome's model would train on); the mean predictor guesses the mean of "
        "those actuals for every game. Coverage: the share of actuals inside the 90% "
        "interval.</p>",
        _table(headers, rows),
        _chart("predicted-vs-actual", specs)
        or _note("No game has both a prediction and an actual."),
    ]
    if good["intervals"]:
        parts.append(_chart("coverage", specs) or _note("Too few games per year for coverage."))
    else:
        parts.append(_note("No intervals: score with --intervals N for coverage."))
    return "".join(parts)


def _sure(doc: dict[str, Any], specs: dict[str, Any]) -> str:
    sure = doc["sure"]
    if not sure["intervals"]:
        return _note(
            "These predictions have no intervals: `bggscore score --intervals 200` adds the "
            "90% intervals this section draws."
        )
    return (
        f"<p>{sure['games_with_intervals']:,} games with 90% intervals. Width by the number of "
        "ratings (line: median, band: middle half), then the games the models are least "
        "sure about.</p>" + _chart("widths", specs) + _chart("least-sure", specs)
    )


def _map(doc: dict[str, Any], specs: dict[str, Any]) -> str:
    game_map = doc["map"]
    if not game_map["points"]:
        return _note("No game embeddings yet: `bggscore embed` computes them.")
    parts = [
        f"<p>{game_map['shown']:,} of {game_map['games']:,} embedded games on the 2-D map of "
        "their game embeddings (the most rated, then a fixed sample); hover for names, drag "
        "and scroll to move and zoom.</p>",
        _chart("map", specs),
    ]
    for game in doc["neighbours"]:
        rows = [[n["name"], n["game_id"], f"{n['similarity']:.3f}"] for n in game["neighbours"]]
        parts.append(f"<h3>Games most like {escape(game['name'])} ({game['game_id']})</h3>")
        parts.append(_table(["game", "id", "similarity"], rows))
    parts.append(_chart("neighbours", specs))
    if not doc["neighbours"]:
        parts.append(_note("Pass --game-id N for a game's neighbours."))
    return "".join(parts)


RENDER = {"run": _run, "moved": _moved, "good": _good, "sure": _sure, "map": _map}


def html(doc: dict[str, Any], specs: dict[str, Any], script: str) -> str:
    """The whole page."""
    job = doc["run"]["job"]
    about = f"job {job['job_id']}" if job else "no job"
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    body = "".join(
        f'<section id="{key}"><h2>{escape(title)}</h2>{RENDER[key](doc, specs)}</section>'
        for key, title in SECTIONS
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>bggscore report: {escape(about)}</title><style>{STYLE}</style></head>"
        "<body><header><h1>bggscore report</h1>"
        f"<p>{escape(doc['warehouse'])} · {escape(about)} · made {escape(doc['generated_at'])}</p>"
        f"<nav>{nav}</nav></header><main>{body}</main>"
        f"<script>{script}</script>"
        f'<script type="application/json" id="bggscore-specs">{_json_script(specs)}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
