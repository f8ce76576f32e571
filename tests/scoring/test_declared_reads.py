"""What a registration says its model reads, and the pass that reads before it loads."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from tests.support.state import read, written_counts

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


def test_registrations_without_reads_score_the_same(cli, demo_home: Path, tmp_path: Path) -> None:
    """Registrations made before ``reads`` was recorded load their models first."""
    import shutil

    before = tmp_path / "before"
    shutil.copytree(demo_home, before)
    assert cli("score", "--all-years").exit_code == 0
    declared = read(demo_home, "ml_predictions_landing")
    shutil.rmtree(demo_home)
    shutil.copytree(before, demo_home)
    for path in _registrations(demo_home):
        data = json.loads(path.read_text())
        del data["reads"]
        path.write_text(json.dumps(data))
    settings = load_settings()
    plan = resolve_models(
        settings, open_settings_registry(settings), ["complexity", "main"], {}, False
    )
    assert plan.declared_reads() is None
    assert cli("score", "--all-years").exit_code == 0
    loaded_first = read(demo_home, "ml_predictions_landing")
    columns = ["game_id", "predicted_complexity", "predicted_rating", "predicted_geek_rating"]
    assert loaded_first.sort("game_id")[columns].equals(declared.sort("game_id")[columns])


def test_a_registration_listing_too_little_is_refused_with_nothing_written(
    cli, demo_home: Path
) -> None:
    for path in _registrations(demo_home):  # every model reads it: none may list it
        data = json.loads(path.read_text())
        data["reads"] = [c for c in data["reads"] if c != "mechanics"]
        path.write_text(json.dumps(data))
    before = written_counts(demo_home)
    result = cli("score", "--all-years")
    assert result.exit_code == 1
    assert "complexity:1 reads mechanics, which its registration does not list" in result.stderr
    assert "Traceback" not in result.stderr
    assert written_counts(demo_home) == before


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
