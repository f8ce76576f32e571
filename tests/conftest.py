"""Shared fixtures: an isolated bggscore home, the CLI runner, the real sample."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

if TYPE_CHECKING:
    from tests.support.production import ProductionModels, ProductionRegistry

# fixtures shared from tests/support: `github` (a fake GitHub API), `emulator` (bqemulator)
pytest_plugins = ["tests.support.github", "tests.support.warehouses"]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "sample_games.parquet"


def pytest_configure(config: pytest.Config) -> None:
    # rendered SQL (warehouse/sql.py) goes to this session's own cache folder, not the
    # developer's ~/.cache; subprocesses inherit it
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="bggscore-tests-cache-")


@contextmanager
def isolated(home_path: Path, cwd: Path | None = None) -> Iterator[pytest.MonkeyPatch]:
    """For session fixtures: BGGSCORE_HOME at ``home_path`` (and ``cwd``), with no
    BGGSCORE_*/GITHUB_* variables leaking in from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("BGGSCORE_", "GITHUB_")):
                mp.delenv(key)
        if cwd is not None:
            mp.chdir(cwd)
        mp.setenv("BGGSCORE_HOME", str(home_path))
        yield mp


@pytest.fixture(autouse=True)
def _import_path_restored() -> Iterator[None]:
    """A test that loads an imported model puts the model's own code folder on sys.path (as
    bggscore does for the rest of a process) and imports its package, `src`: undo both, so
    the next test sees the interpreter as it was."""
    import sys

    before = list(sys.path)
    yield
    sys.path[:] = before
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]


@pytest.fixture
def sample_path() -> Path:
    """The 1,000 real games; they stay in ../shared and are never copied here."""
    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    return SAMPLE


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh bggscore home; no BGGSCORE_* variables or config file leak in."""
    for key in list(os.environ):
        if key.startswith(("BGGSCORE_", "GITHUB_")):
            monkeypatch.delenv(key)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = tmp_path / "home"
    monkeypatch.setenv("BGGSCORE_HOME", str(path))
    yield path


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(home: Path):
    """Run `bggscore ARGS...` in-process and return exit code, stdout and stderr."""
    from bggscore.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Outcome:
        result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return invoke


# -- a trained demo home for the scoring tests ---------------------------------------------
DEMO_GAMES = 3000  # enough for every outcome to train; small enough to build in seconds


@pytest.fixture(scope="session")
def trained_demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bggscore home with ~3,000 demo games and the five trained models, built ONCE.

    The catalogue comes from the demo generator, loaded with the warehouse loader; the
    models are trained with the real CLI (`models train --all`). Nothing is scored. Tests
    never use this home directly: `demo_home` gives each test its own copy.
    """
    from bggscore.cli.main import app
    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.load import load_games

    root = tmp_path_factory.mktemp("trained-demo")
    path = root / "home"
    with isolated(path, root):
        with open_warehouse(load_settings(), create=True) as wh:
            wh.ensure_schema()
            load_games(wh, generate_catalogue(DEMO_GAMES, 0))
        result = CliRunner().invoke(app, ["models", "train", "--all"], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def demo_home(home: Path, trained_demo_home: Path) -> Path:
    """This test's own copy of the trained demo home, at the `home` fixture's path."""
    import shutil

    shutil.copytree(trained_demo_home, home)
    return home


@pytest.fixture(scope="session")
def scored_demo_home(trained_demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained demo home after a full `score --all-years` and `embed --all-years`,
    built ONCE: every stage is up to date for every game with a known year.

    For change-detection tests that start from "nothing changed". Tests never use it
    directly: `scored_home` gives each test its own copy.
    """
    import shutil

    from bggscore.cli.main import app

    root = tmp_path_factory.mktemp("scored-demo")
    path = root / "home"
    shutil.copytree(trained_demo_home, path)
    with isolated(path, root):
        for command in ("score", "embed"):
            result = CliRunner().invoke(app, [command, "--all-years"], catch_exceptions=False)
            assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def scored_home(home: Path, scored_demo_home: Path) -> Path:
    """This test's own copy of the fully scored demo home, at the `home` fixture's path."""
    import shutil

    shutil.copytree(scored_demo_home, home)
    return home


# -- one real `bggscore demo` home, for the demo / embed / similar / run tests ---------------
# `models train --all` on 3,000 games costs ~30 s of CPU; `bggscore demo --games 2000` trains
# the six models the pipeline uses, scores and embeds in ~10 s, so these tests start from it.
EMBED_DEMO_GAMES = 2000


def run_cli_in(home_path: Path, cwd: Path, *args: str) -> Outcome:
    """Run `bggscore ARGS...` against ``home_path`` outside a test (for session fixtures)."""
    from bggscore.cli.main import app

    with isolated(home_path, cwd):
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.stderr)
    return Outcome(result.exit_code, result.stdout, result.stderr)


@dataclass
class DemoRun:
    home: Path
    first: Outcome  # what `bggscore demo --games 2000 --json` printed


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`bggscore demo --games 2000 --no-report --json` in a fresh home, run ONCE: six models
    trained, every game scored and embedded. Tests never use `home` directly: they copy it."""
    root = tmp_path_factory.mktemp("demo-run")
    path = root / "home"
    # the first half of the demo: its day of changes and report are tests/report's
    first = run_cli_in(
        path, root, "demo", "--games", str(EMBED_DEMO_GAMES), "--no-report", "--json"
    )
    return DemoRun(path, first)


@pytest.fixture
def embedded_home(home: Path, demo_run: DemoRun) -> Path:
    """This test's own copy of the demo home: models registered, every stage up to date."""
    import shutil

    shutil.copytree(demo_run.home, home)
    return home


@pytest.fixture(scope="session")
def unscored_demo_home(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's registry (outcome and embedding models) beside a fresh warehouse holding
    the same catalogue, loaded and never scored nor embedded. Built ONCE."""
    import shutil

    from bggscore.demo.catalogue import generate_catalogue
    from bggscore.settings import load_settings
    from bggscore.warehouse import open_warehouse
    from bggscore.warehouse.load import load_games

    root = tmp_path_factory.mktemp("unscored-demo")
    path = root / "home"
    path.mkdir()
    shutil.copytree(demo_run.home / "registry", path / "registry")
    with isolated(path), open_warehouse(load_settings(), create=True) as wh:
        wh.ensure_schema()
        load_games(wh, generate_catalogue(EMBED_DEMO_GAMES, 0))
    return path


@pytest.fixture
def unscored_home(home: Path, unscored_demo_home: Path) -> Path:
    """This test's own copy of `unscored_demo_home` (models registered, nothing scored)."""
    import shutil

    shutil.copytree(unscored_demo_home, home)
    return home


@pytest.fixture(scope="session")
def scored_unembedded_demo_home(
    unscored_demo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`unscored_demo_home` after `score --all-years`: ready to embed, built ONCE."""
    import shutil

    root = tmp_path_factory.mktemp("scored-unembedded-demo")
    path = root / "home"
    shutil.copytree(unscored_demo_home, path)
    run_cli_in(path, root, "score", "--all-years")
    return path


@pytest.fixture
def to_embed_home(home: Path, scored_unembedded_demo_home: Path) -> Path:
    """This test's own copy of `scored_unembedded_demo_home` (scored, nothing embedded)."""
    import shutil

    shutil.copytree(scored_unembedded_demo_home, home)
    return home


# the real sample is small (1,000 games): words seen twice count, and fewer dimensions
SAMPLE_TEXT_TRAINING = ("--min-count", "2", "--dim", "32")
SAMPLE_GAME_TRAINING = ("--dim", "32")


@pytest.fixture(scope="session")
def embedded_sample_demo_home(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 1,000-game sample, scored with the demo-trained outcome models, with text
    and game embeddings trained ON THE SAMPLE (version 2 of each, beside the demo's) and
    every game embedded. Built ONCE."""
    import shutil

    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    root = tmp_path_factory.mktemp("embedded-sample")
    path = root / "home"
    path.mkdir()
    shutil.copytree(demo_run.home / "registry", path / "registry")
    run_cli_in(path, root, "warehouse", "load", str(SAMPLE))
    run_cli_in(path, root, "score", "--all-years")
    run_cli_in(path, root, "models", "train", "--outcome", "text_embeddings", *SAMPLE_TEXT_TRAINING)
    run_cli_in(path, root, "models", "train", "--outcome", "game_embeddings", *SAMPLE_GAME_TRAINING)
    run_cli_in(path, root, "embed", "--all-years")
    return path


@pytest.fixture
def embedded_sample_home(home: Path, embedded_sample_demo_home: Path) -> Path:
    """This test's own copy of `embedded_sample_demo_home`."""
    import shutil

    shutil.copytree(embedded_sample_demo_home, home)
    return home


# -- production's registry, reproduced (tests/support/production.py) ----------------------
@pytest.fixture(scope="session")
def production_models() -> ProductionModels:
    """The five production-shaped pipelines fitted ONCE on the real sample (with fake
    description embeddings): ProductionModels(features, embeddings, models, fit_seconds).
    Shared by every test: never refit or mutate the models."""
    from tests.support.production import sample_production

    if not SAMPLE.is_file():
        pytest.skip(f"real sample not found at {SAMPLE} (only present beside the repository)")
    return sample_production(SAMPLE)


@pytest.fixture(scope="session")
def production_registry(
    production_models: ProductionModels, tmp_path_factory: pytest.TempPathFactory
) -> ProductionRegistry:
    """Production's registry folder (v1 of the five scorers, plus embeddings and
    text-embeddings) written ONCE: ProductionRegistry(features, embeddings, models, root).
    Read-only: copy `root`, or call write_production_registry, to change it."""
    from tests.support.production import ProductionRegistry as Registry
    from tests.support.production import write_production_registry

    features, embeddings, models, _ = production_models
    root = write_production_registry(tmp_path_factory.mktemp("production-registry"), models)
    return Registry(features, embeddings, models, root)


# -- another process holding the home's lock (real subprocesses, for the lock tests) ---------
LOCK_HOLDER = """
import sys, time
from pathlib import Path
from bggscore.locking import pipeline_lock
with pipeline_lock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
"""


class LockHolder:
    """A separate Python process holding `bggscore.locking.pipeline_lock` on a home for some
    seconds. ``with LockHolder(home, 30) as holder:`` returns once the lock is taken;
    ``holder.process`` is its Popen; leaving the block kills it if still alive."""

    def __init__(self, home_path: Path, seconds: float, command: str = "holder") -> None:
        self.args = [str(home_path), command, str(seconds)]

    def __enter__(self) -> LockHolder:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "locked":
            self.__exit__()
            raise AssertionError(f"the lock holder did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()
