"""`bggscore models`: train, register, import, list, alias, archive, unarchive and verify
models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bggscore.cli.common import JsonOption, state
from bggscore.console import Console, print_whole
from bggscore.errors import BggscoreError, IntegrityError, RegistryError, UsageError
from bggscore.stages import (
    DEFAULT_TEST_YEAR,
    DEFAULT_TRAIN_THROUGH,
    DEFAULT_TUNE_YEAR,
    GRAPH,
    MODEL_TYPES,
)

app = typer.Typer(
    help="Train, register, import, list, alias, archive, unarchive and verify models.",
    no_args_is_help=True,
)


def _registry(ctx: typer.Context) -> Any:
    from bggscore.modelset import open_settings_registry

    return open_settings_registry(state(ctx).settings())


def _registration_dict(registration: Any) -> dict[str, Any]:
    return registration.model_dump(mode="json")


@app.command()
def train(
    ctx: typer.Context,
    outcome: Annotated[
        list[str] | None,
        typer.Option(help=f"Outcome to train (repeat): {', '.join(MODEL_TYPES)}."),
    ] = None,
    all_: Annotated[
        bool,
        typer.Option("--all", help="Train every outcome in chain order, then the embeddings."),
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Model name (one outcome only); default from settings.")
    ] = None,
    train_through: Annotated[int, typer.Option(help="Last year fitted.")] = DEFAULT_TRAIN_THROUGH,
    tune_year: Annotated[int, typer.Option(help="Year held out for tuning.")] = DEFAULT_TUNE_YEAR,
    test_year: Annotated[
        int,
        typer.Option(
            help="Year the metrics are computed on; the registered model is refit through it."
        ),
    ] = DEFAULT_TEST_YEAR,
    estimator: Annotated[
        str, typer.Option(help="bayesian_ridge (fast) or ard.")
    ] = "bayesian_ridge",
    max_games: Annotated[
        int | None, typer.Option(min=1, help="Train on a sample of at most this many games.")
    ] = None,
    dim: Annotated[
        int | None,
        typer.Option(min=2, help="Embedding dimension [default: 100 text, 64 game]."),
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="Text: co-occurrence window.")] = 5,
    min_count: Annotated[int, typer.Option(min=1, help="Text: minimum word count.")] = 5,
    json: JsonOption = False,
) -> None:
    """Train baseline models on the warehouse's games and register them with metrics.

    Outcome models report a test-year metric beside a mean (or base-rate) predictor. With
    --all, a model the catalogue cannot train (the hurdle, on an export where every game
    has 25+ ratings) is a warning; the command fails only when nothing trained.
    """
    from bggscore.tasks.train import TRAINABLE, train_models
    from bggscore.training.train import Splits

    if all_ == bool(outcome):
        raise UsageError("give --outcome NAME (repeatable) or --all")
    if estimator not in ("bayesian_ridge", "ard"):
        raise UsageError(f"unknown --estimator {estimator!r}; choose bayesian_ridge or ard")
    console = Console(json_mode=json, command="models train")
    outcomes = list(TRAINABLE) if all_ else list(outcome or [])
    text_options = {"window": window, "min_count": min_count, "dim": dim or 100}
    settings = state(ctx).settings()
    with console.steps(len(outcomes), first="reading the games") as step:  # one per model
        report = train_models(
            settings,
            outcomes,
            name=name,
            splits=Splits(train_through, tune_year, test_year),
            estimator=estimator,
            max_games=max_games,
            on_step=step,
            embedding_options={
                "text_embeddings": text_options,
                "game_embeddings": {"dim": dim or 64},
            },
        )

    def render(out: Any) -> None:
        table = Table(title="trained models")
        for column in ("outcome", "model", "test metric", "value", "mean predictor", "beats"):
            table.add_column(column)
        for item in report.trained:
            m = item["metrics"]
            if item["beats_baseline"] is None:  # embeddings: no target to beat
                detail = ", ".join(f"{k} {v}" for k, v in m.items())
                table.add_row(item["outcome"], item["model"], detail, "", "", "")
                continue
            key = "rmse" if "rmse" in m else "log_loss"
            table.add_row(
                item["outcome"],
                item["model"],
                key,
                f"{m[key]:.4f}",
                f"{m['baseline_' + key]:.4f}",
                "yes" if item["beats_baseline"] else "NO",
            )
        print_whole(out, table)

    console.result({"trained": report.trained, "failed": report.failed}, render)
    for item in report.trained:
        if item["beats_baseline"] is False:
            console.warn(f"{item['model']} does not beat the mean predictor on {test_year}")
    if report.failed and all_ and report.trained:
        # --all trains what the catalogue allows: what it could not is a warning, not a failure
        for failed in report.failed:
            kind, error = failed["outcome"], failed["error"]
            said = error if kind in error else f"{kind} not trained: {error}"
            console.warn(f"{said}{_without(settings, kind)}")
        return
    if report.failed:
        detail = "; ".join(f"{f['outcome']}: {f['error']}" for f in report.failed)
        raise BggscoreError(f"{len(report.failed)} of {len(outcomes)} outcome(s) failed: {detail}")


def _without(settings: Any, outcome: str) -> str:
    """What scoring does without an optional model (the hurdle) that could not be trained:
    with its reference left at the default, its stage is scored without it."""
    stage = GRAPH.get(GRAPH.stage_of(outcome))
    if outcome not in stage.optional or outcome in settings.models.model_fields_set:
        return ""
    return f"; `score` scores {stage.name} without it until one is registered"


@app.command("list")
def list_(
    ctx: typer.Context,
    model_type: Annotated[str | None, typer.Option("--type", help="Only this model type.")] = None,
    json: JsonOption = False,
) -> None:
    """Every registered model version with its aliases and status."""
    registry = _registry(ctx)
    registrations = registry.list(model_type)
    aliases = {name: registry.aliases(name) for name in {r.name for r in registrations}}
    rows = [
        {
            "type": r.model_type,
            "name": r.name,
            "version": r.version,
            "status": r.status,
            "aliases": sorted(a for a, v in aliases[r.name].items() if v == r.version),
            "created_at": r.created_at,
            "sha256": r.sha256,
            "metrics": r.metrics,
            "source": r.source,
        }
        for r in registrations
    ]

    def render(out: Any) -> None:
        table = Table(title=f"models in {registry.uri}")
        for column in ("type", "name", "version", "status", "aliases", "created_at", "source"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row["type"],
                row["name"],
                str(row["version"]),
                row["status"],
                ", ".join(row["aliases"]),
                row["created_at"].isoformat(timespec="seconds"),
                row["source"],
            )
        if rows:
            print_whole(out, table)
        else:
            out.print("no models registered yet: run `bggscore models train --all`")

    Console(json_mode=json, command="models list").result(
        {"registry": registry.uri, "models": rows}, render
    )


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@alias or name:VERSION")],
    json: JsonOption = False,
) -> None:
    """Show one registration (signature, training window, metrics)."""
    registration = _registry(ctx).resolve(ref)
    data = _registration_dict(registration)
    Console(json_mode=json, command="models show").result(
        data, lambda out: out.print_json(data=data)
    )


@app.command()
def register(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A joblib file holding a fitted pipeline.")],
    model_type: Annotated[str, typer.Option("--type", help="Model type, e.g. rating.")],
    name: Annotated[str, typer.Option(help="Model name, e.g. rating-v2026.")],
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    signature: Annotated[
        Path | None,
        typer.Option(
            help='The input columns, a JSON file: [{"name": "min_age", "dtype": "INT64", '
            '"source": "warehouse"}, ...] ("source" is warehouse or chain, for a column '
            "an earlier model predicts); default from the model's feature_names_in_.",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Register your own joblib pipeline (input columns: feature_names_in_ or --signature).

    A hurdle model must have predict_proba, the other outcomes predict; `models show
    NAME --json` prints a registered model's signature in the form --signature reads.
    """
    from bggscore.registry import read_signature_file

    columns = read_signature_file(signature) if signature is not None else None
    registration = _registry(ctx).register_file(
        path, model_type, name, description=description, signature=columns
    )
    data = _registration_dict(registration)
    Console(json_mode=json, command="models register").result(
        data, lambda out: out.print(f"registered {registration.label} ({registration.model_type})")
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="production's models/registered (a folder or gs://bucket/prefix), or one "
            "type, name or version folder inside it."
        ),
    ],
    code_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--code-path",
            metavar="<dir>",
            help="A folder holding the models' own code (repeat); recorded with the models "
            "[setting: registry.code_paths].",
        ),
    ] = None,
    check_with: Annotated[
        Path | None,
        typer.Option(
            help="Check the models on a games_features parquet export (embeddings from its "
            "`embedding` column) instead of the warehouse.",
            dir_okay=False,
        ),
    ] = None,
    no_check: Annotated[
        bool,
        typer.Option("--no-check", help="Import without predicting on any games (proved: false)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be imported; write nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Import production's registered models as they are, without retraining.

    Each version keeps its type, name and version number; pipeline.pkl is copied byte for
    byte and its sha256 recorded (every load checks it), the original registration.json is
    kept under `imported`, and registered_at (no time zone) is read as UTC. Before anything
    is written, each model predicts on up to 100 warehouse games through the scoring chain
    (complexity from the models imported with it, else the registry's); a failure imports
    nothing. Each name's champion alias then points at its newest non-archived version.
    A version imported before is unchanged, or restored from the source when its stored
    copy no longer matches its sha256. A pickle made with another scikit-learn is refused
    unless --allow-version-mismatch.
    Production's embedding models are skipped: bggscore trains its own.
    """
    from bggscore.tasks.adopt import ImportOptions, run_import

    if no_check and check_with is not None:
        raise UsageError("--check-with and --no-check contradict each other; give one")
    console = Console(json_mode=json, command="models import")
    options = ImportOptions(source, list(code_path or []), check_with, not no_check, dry_run)
    data = run_import(state(ctx).settings(), options, console)

    def render(out: Any) -> None:
        would = "would import" if data["dry_run"] else "imported"
        for row in data["imported"]:
            proved = "checked" if row["proved"] else "not checked"
            out.print(
                f"{would} {row['name']}:{row['version']} ({row['type']}, {row['status']}, "
                f"scikit-learn {row['sklearn'] or 'unknown'}, {proved})"
            )
        if data["imported"]:
            out.print("(production's registered_at has no time zone: read as UTC)")
        for row in data["unchanged"]:
            out.print(f"unchanged {row['name']}:{row['version']} (already imported)")
        restore = "would restore" if data["dry_run"] else "restored"
        for row in data["restored"]:
            out.print(
                f"{restore} {row['name']}:{row['version']} (its stored copy was missing or "
                "did not match its sha256: rewritten from the source)"
            )
        for row in data["skipped"]:
            out.print(f"skipped {row['path']}: {row['reason']}")
        for row in data["champion"]:
            if row["version"] is not None:
                moved = "" if row["changed"] else " (unchanged)"
                out.print(f"{row['name']}@champion -> {row['name']}:{row['version']}{moved}")
        if data["settings"] and not data["dry_run"]:
            given = ", ".join(f'{key} = "{value}"' for key, value in data["settings"].items())
            out.print(f"to score with them, set {given} (bggscore.toml or BGGSCORE_MODELS__*)")

    console.result(data, render)


@app.command()
def alias(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="The version to point at: name:VERSION, name or name@alias; "
            "with --remove, the alias to remove as name@alias."
        ),
    ],
    alias_name: Annotated[
        str | None, typer.Argument(metavar="ALIAS", help="e.g. champion.", show_default=False)
    ] = None,
    remove: Annotated[
        bool,
        typer.Option(
            "--remove", help="Remove the alias REF names (rating@champion); its version stays."
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Point an alias (champion, challenger, ...) at a version; moves it if it exists.

    `models alias rating:2 champion` sets it, `models alias --remove rating@champion`
    removes it.
    """
    from bggscore.registry import parse_ref

    if remove:
        target = parse_ref(ref)
        if alias_name is not None or target.alias is None:
            raise UsageError(
                "--remove takes one argument, the alias as NAME@ALIAS, e.g. rating@champion"
            )
        version = _registry(ctx).remove_alias(target.name, target.alias)
        label = f"{target.name}:{version}" if version else None
        Console(json_mode=json, command="models alias").result(
            {"alias": target.alias, "model": label, "removed": True},
            lambda out: out.print(
                f"removed {target}" + (f" (it pointed to {label})" if label else "")
            ),
        )
        return
    if alias_name is None:
        raise UsageError("give the alias to set, e.g. `bggscore models alias rating:2 champion`")
    registration = _registry(ctx).set_alias(ref, alias_name)
    Console(json_mode=json, command="models alias").result(
        {"alias": alias_name, "model": registration.label},
        lambda out: out.print(f"{registration.name}@{alias_name} -> {registration.label}"),
    )


@app.command()
def archive(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(help="name:VERSION or name@alias (a plain name is refused: say which)."),
    ],
    json: JsonOption = False,
) -> None:
    """Archive a version: references by name skip it; name:VERSION still loads it.

    Its aliases are removed. A plain name is refused (say which version or alias);
    `models unarchive name:VERSION` undoes it.
    """
    registration = _registry(ctx).archive(ref)
    Console(json_mode=json, command="models archive").result(
        {"model": registration.label, "status": registration.status},
        lambda out: out.print(f"archived {registration.label}"),
    )


@app.command()
def unarchive(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name:VERSION.")],
    json: JsonOption = False,
) -> None:
    """Make an archived version active again; the aliases archiving removed stay removed."""
    registration = _registry(ctx).unarchive(ref)
    Console(json_mode=json, command="models unarchive").result(
        {"model": registration.label, "status": registration.status},
        lambda out: out.print(f"{registration.label} is active"),
    )


@app.command()
def verify(
    ctx: typer.Context,
    ref: Annotated[
        str | None, typer.Argument(help="One model version; default the whole registry.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Re-hash artifacts against their registrations (nothing is unpickled).

    Without REF the whole registry is checked: also that every alias points at a
    registered version and every version folder holds its registration.json. One line
    per version or problem; exit 1 if there is any.
    """
    results = _registry(ctx).verify(ref)
    rows = [
        {"model": r.label, "type": r.model_type, "ok": r.ok, "problem": r.problem} for r in results
    ]

    def render(out: Any) -> None:
        for row in rows:
            mark = "[green]ok[/]" if row["ok"] else f"[red]FAILED[/] {row['problem']}"
            out.print(f"{row['model']:<32} {mark}")

    Console(json_mode=json, command="models verify").result({"verified": rows}, render)
    bad = [r for r in results if not r.ok]
    if bad:
        tampered = any(r.actual_sha256 is not None for r in bad)
        error = IntegrityError if tampered else RegistryError
        raise error(
            f"{len(bad)} problem(s) found: {', '.join(r.label for r in bad)}",
            "each row says what is wrong; re-register or restore them (an imported "
            "model: `bggscore models import` its source again)",
        )
