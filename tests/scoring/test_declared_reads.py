"""What a registration says its model reads, and the pass that reads before it loads."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from tests.support.state import read

from bggscore.modelset import builder_reads, open_settings_registry, resolve_models
from bggscore.registry import Registry
from bggscore.settings import load_settings
from bggscore.warehouse.duckdb_engine import DuckDBWarehouse

SCORE_TYPES = ("complexity", "hurdle", "rating", "users_rated")


def _registrations(home: Path) -> list[Path]:
    return [home / "registry" / t / t / "v1" / "registration.json" for t in SCORE_TYPES]


def test_trained_models_declare_what_their_builder_reads(demo_home: Path) -> None:
    settings = load_settings()
    registry = open_settings_registry(settings)
    plan = resolve_models(settings, registry, ["complexity", "main"], {}, load=False)
    models = resolve_models(settings, registry, ["complexity", "main"], {})
    for loaded in models.models.values():
        assert loaded.registration.reads == builder_reads(loaded.model)
        assert "description_chars" in loaded.registration.reads  # its length, not its text
    assert plan.declared_reads() == models.read_columns()


def test_a_pass_reads_its_first_batch_while_the_models_load(cli, demo_home: Path, mocker) -> None:
    """Loading waits for the features read to start: were the read to start only after
    the models loaded, the load would time out and the run fail."""
    reading = threading.Event()
    fetch, load = DuckDBWarehouse._fetch_batches, Registry.load

    def fetch_batches(self, *args, **kwargs):
        reading.set()
        yield from fetch(self, *args, **kwargs)

    def slow_load(self, *args, **kwargs):
        assert reading.wait(10), "the models were loaded before the features read began"
        return load(self, *args, **kwargs)

    mocker.patch.object(DuckDBWarehouse, "_fetch_batches", fetch_batches)
    mocker.patch.object(Registry, "load", slow_load)
    result = cli("score", "--all-years", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["games_scored"] == len(
        read(demo_home, "ml_predictions_landing")
    )


def _drop_mechanics(data: dict) -> None:
    data["reads"] = [c for c in data["reads"] if c != "mechanics"]


def _unknown_column(data: dict) -> None:
    data["reads"] = [*data["reads"], "not_a_column"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: data.pop("reads"),  # made before `reads` was recorded: loaded first
        _drop_mechanics,  # listing less than the model reads: the pass reads again
        _unknown_column,  # a column no features read has: loaded first
    ],
    ids=["without reads", "listing too little", "naming an unknown column"],
)
def test_registrations_saying_otherwise_score_the_same(
    cli, demo_home: Path, tmp_path: Path, edit
) -> None:
    import shutil

    before = tmp_path / "before"
    shutil.copytree(demo_home, before)
    assert cli("score", "--all-years").exit_code == 0
    declared = read(demo_home, "ml_predictions_landing")
    shutil.rmtree(demo_home)
    shutil.copytree(before, demo_home)
    for path in _registrations(demo_home):  # every model reads mechanics: none lists it
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    result = cli("score", "--all-years")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    edited = read(demo_home, "ml_predictions_landing")
    columns = ["game_id", "predicted_complexity", "predicted_rating", "predicted_geek_rating"]
    assert edited.sort("game_id")[columns].equals(declared.sort("game_id")[columns])
    assert len(edited) == len(declared)


def test_what_a_registration_declares_is_checked_against_the_warehouse(demo_home: Path) -> None:
    settings = load_settings()
    registry = open_settings_registry(settings)
    plan = resolve_models(settings, registry, ["complexity", "main"], {}, load=False)
    assert plan.declared_reads() is not None
    loaded = plan.models["rating"]
    loaded.registration.reads = [*(loaded.registration.reads or []), "not_a_column"]
    assert plan.declared_reads() is None
    loaded.registration.reads = None
    assert plan.declared_reads() is None


@pytest.mark.parametrize(("batch", "leaves"), [(None, False), ("500", True)])
def test_a_pass_of_one_batch_leaves_the_warehouse_every_core(
    cli, demo_home: Path, mocker, batch: str | None, leaves: bool
) -> None:
    """Cores are left to the models only while batches are read and committed beside
    them; one batch is read, computed and committed in turn."""
    spy = mocker.spy(DuckDBWarehouse, "leaving_cores")
    args = ["score", "--all-years"] + (["--batch-size", batch] if batch else [])
    assert cli(*args).exit_code == 0
    assert spy.called is leaves
