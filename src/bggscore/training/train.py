"""Train the baseline outcome models on warehouse data and register them.

Splits follow the production convention: fit on years <= ``train_through``,
report metrics on ``test_year`` beside a mean (or base-rate) predictor, then
refit through ``test_through`` for the registered model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bggscore.errors import InputError, UsageError
from bggscore.modelset import builder_reads
from bggscore.scoring.outcomes import OUTCOMES, TRAIN_ORDER, Outcome
from bggscore.scoring.predict import add_chain_inputs, predict
from bggscore.stages import DEFAULT_TEST_YEAR, DEFAULT_TRAIN_THROUGH, DEFAULT_TUNE_YEAR
from bggscore.training.compile import compile_pipeline

if TYPE_CHECKING:
    from bggscore.registry import Registration, Registry

MIN_TRAIN_ROWS = 50
MIN_TEST_ROWS = 10


@dataclass(frozen=True)
class Splits:
    train_through: int = DEFAULT_TRAIN_THROUGH
    tune_year: int = DEFAULT_TUNE_YEAR
    test_year: int = DEFAULT_TEST_YEAR

    def __post_init__(self) -> None:
        if not self.train_through < self.tune_year < self.test_year:
            raise UsageError(
                f"years must satisfy train-through < tune-year < test-year, got "
                f"{self.train_through}, {self.tune_year}, {self.test_year}"
            )

    def as_dict(self) -> dict[str, int]:
        return {
            "train_through": self.train_through,
            "tune_year": self.tune_year,
            "test_year": self.test_year,
            "test_through": self.test_year,
            "refit_through": self.test_year,
        }


@dataclass
class TrainResult:
    outcome: str
    registration: Registration
    metrics: dict[str, Any] = field(default_factory=dict)


HURDLE_C_GRID = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # regularisation picked on the tune year


def build_head(outcome: Outcome, estimator: str = "bayesian_ridge", c: float = 0.5) -> Any:
    """Everything after the features: scaling and the estimator."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler

    from bggscore.training.estimators import SparseBayesianRegressor

    if outcome.kind == "classification":
        model: Any = LogisticRegression(C=c, max_iter=2000)
    else:
        model = SparseBayesianRegressor(kind="ard" if estimator == "ard" else "ridge")
    return Pipeline([("scale", MaxAbsScaler()), ("model", model)])


def fit_base(frame: pl.DataFrame) -> Any:
    """One feature base (vocabularies, medians) shared by every outcome of a run."""
    from bggscore.features import FeatureBuilder

    return FeatureBuilder().fit(frame)


def fit_pipeline(
    outcome: Outcome,
    base: Any,
    rows: pl.DataFrame,
    y: np.ndarray,
    estimator: str,
    c: float = 0.5,
) -> Any:
    """features (the shared base plus this outcome's chain inputs) -> scale -> model."""
    from sklearn.pipeline import Pipeline

    builder = base.with_chain_inputs(outcome.chain_inputs, rows)
    head = build_head(outcome, estimator, c).fit(builder.transform(rows), y)
    return Pipeline([("features", builder), *head.steps])


def build_pipeline(outcome: Outcome, estimator: str = "bayesian_ridge") -> Any:
    """An unfitted pipeline with its own feature base (for one-off fits and tests)."""
    from sklearn.pipeline import Pipeline

    from bggscore.features import FeatureBuilder

    features = FeatureBuilder(chain_inputs=outcome.chain_inputs)
    return Pipeline([("features", features), *build_head(outcome, estimator).steps])


def _metrics(outcome: Outcome, y_true: np.ndarray, y_pred: np.ndarray, base: float) -> dict:
    if outcome.kind == "classification":
        from sklearn.metrics import log_loss, roc_auc_score

        rate = np.full_like(y_pred, np.clip(base, 1e-6, 1 - 1e-6))
        both = len(np.unique(y_true)) > 1
        return {
            "log_loss": float(log_loss(y_true, y_pred, labels=[0, 1])),
            "baseline_log_loss": float(log_loss(y_true, rate, labels=[0, 1])),
            "auc": float(roc_auc_score(y_true, y_pred)) if both else None,
            "n_test": len(y_true),
        }
    errors = y_pred - y_true
    baseline = base - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2)) or 1.0
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
        "r2": 1.0 - float(np.sum(errors**2)) / ss_tot,
        "baseline_rmse": float(np.sqrt(np.mean(baseline**2))),
        "baseline_mae": float(np.mean(np.abs(baseline))),
        "n_test": len(y_true),
    }


def beats_baseline(metrics: dict[str, Any]) -> bool:
    if "rmse" in metrics:
        return bool(metrics["rmse"] < metrics["baseline_rmse"])
    return bool(metrics["log_loss"] < metrics["baseline_log_loss"])


def _check_rows(outcome: Outcome, rows: int, needed: int, what: str) -> None:
    if rows < needed:
        raise InputError(
            f"too few games to train {outcome.name}: {rows} {what} (needs at least {needed})",
            "load more games or change --train-through/--test-year",
        )


def fit_bases(frame: pl.DataFrame, splits: Splits) -> tuple[Any, Any]:
    """Feature bases for the metrics fit (train years) and the final refit."""
    known = frame.filter(pl.col("year_published").is_not_null())
    train = known.filter(pl.col("year_published") <= splits.train_through)
    final = known.filter(pl.col("year_published") <= splits.test_year)
    return fit_base(train if len(train) else known), fit_base(final if len(final) else known)


def fit_outcome(
    outcome: Outcome,
    frame: pl.DataFrame,
    splits: Splits,
    estimator: str = "bayesian_ridge",
    bases: tuple[Any, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fit on train years, score the test year, refit through the test year."""
    data = frame.filter(pl.col("year_published").is_not_null())
    if outcome.train_filter is not None:
        data = data.filter(outcome.train_filter)
    data = data.filter(pl.col(outcome.target).is_not_null())
    train = data.filter(pl.col("year_published") <= splits.train_through)
    test = data.filter(pl.col("year_published") == splits.test_year)
    _check_rows(outcome, len(train), MIN_TRAIN_ROWS, f"games through {splits.train_through}")
    _check_rows(outcome, len(test), MIN_TEST_ROWS, f"games in {splits.test_year}")
    y_train = outcome.target_values(train).to_numpy()
    if outcome.kind == "classification" and len(np.unique(y_train)) < 2:
        raise InputError(
            f"cannot train {outcome.name}: every training game is on the same side of the "
            "users_rated hurdle",
            "train it on a catalogue that includes games with few ratings",
        )
    base_train, base_final = bases or fit_bases(frame, splits)
    tune = data.filter(pl.col("year_published") == splits.tune_year)
    c = _tune_c(outcome, base_train, train, y_train, tune, estimator)
    pipeline = fit_pipeline(outcome, base_train, train, y_train, estimator, c)
    y_test = outcome.target_values(test).to_numpy()
    metrics = _metrics(outcome, y_test, predict(pipeline, test, outcome), float(y_train.mean()))
    metrics["n_train"] = len(train)
    if outcome.kind == "classification":
        metrics["C"] = c
    final = data.filter(pl.col("year_published") <= splits.test_year)
    refit = fit_pipeline(
        outcome, base_final, final, outcome.target_values(final).to_numpy(), estimator, c
    )
    metrics["n_refit"] = len(final)
    return refit, metrics


def _tune_c(
    outcome: Outcome,
    base: Any,
    train: pl.DataFrame,
    y_train: np.ndarray,
    tune: pl.DataFrame,
    estimator: str,
) -> float:
    """The classifier's regularisation with the best log loss on the tune year."""
    if outcome.kind != "classification":
        return 0.5
    y_tune = outcome.target_values(tune).to_numpy()
    if len(tune) < MIN_TEST_ROWS or len(np.unique(y_tune)) < 2:
        return 0.5  # nothing to tune on: the default
    from sklearn.metrics import log_loss

    losses = {}
    for c in HURDLE_C_GRID:
        fitted = fit_pipeline(outcome, base, train, y_train, estimator, c)
        losses[c] = log_loss(y_tune, predict(fitted, tune, outcome), labels=[0, 1])
    return min(losses, key=losses.__getitem__)


def signature(pipeline: Any) -> list[dict[str, str]]:
    from bggscore.warehouse.schemas import GAMES_FEATURES

    kinds = dict(GAMES_FEATURES.columns)
    builder = pipeline.named_steps["features"]
    return [
        {
            "name": name,
            "dtype": kinds.get(name, "FLOAT64"),
            "source": ("warehouse" if name in kinds else "chain"),
        }
        for name in builder.input_columns()
    ]


def train_outcomes(
    frame: pl.DataFrame,
    registry: Registry,
    outcomes: list[str],
    names: dict[str, str],
    chain_refs: dict[str, str],
    splits: Splits,
    estimator: str = "bayesian_ridge",
    on_step: Any = None,
) -> list[TrainResult]:
    """Train and register each outcome in chain order; chain inputs come from the model
    just trained or, when not trained in this call, from the registry."""
    results: list[TrainResult] = []
    fitted: dict[str, Any] = {}
    bases = fit_bases(frame, splits)
    for name in TRAIN_ORDER:
        if name not in outcomes:
            continue
        outcome = OUTCOMES[name]
        needed = _upstream(outcome)
        for upstream in needed:
            if upstream not in fitted:
                fitted[upstream] = registry.load(chain_refs[upstream], upstream).model
        inputs = add_chain_inputs(frame, {k: fitted[k] for k in needed})
        if on_step:
            on_step(f"training {name}")
        pipeline, metrics = fit_outcome(outcome, inputs, splits, estimator, bases)
        fitted[name] = pipeline
        compiled = compile_pipeline(pipeline)  # scoring loads it without scikit-learn
        registration = registry.register(
            name,
            names[name],
            compiled,
            description=f"baseline {estimator}: {outcome.description}",
            signature=signature(pipeline),
            output=outcome.output(),
            training={**splits.as_dict(), "estimator": estimator, "games": len(frame)},
            metrics=metrics,
            experiment=f"{names[name]}-baseline",
            reads=builder_reads(compiled),
        )
        results.append(TrainResult(name, registration, metrics))
    return results


def _upstream(outcome: Outcome) -> list[str]:
    produced_by = {
        "predicted_complexity": "complexity",
        "predicted_rating": "rating",
        "predicted_log_users_rated": "users_rated",
    }
    return [produced_by[c] for c in outcome.chain_inputs]
