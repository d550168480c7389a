"""The load predictor: node features at ``t`` → CPU and memory utilisation at ``t + h``.

Two gradient-boosted tree ensembles (XGBoost), one per resource. Each learns the *change*
from the node's current value rather than the level:

    ŷ(t + h) = clip(base(t) + f(x(t)), 0, 1),   base(t) = first present of
    util(t), ewma_10m(t), mean_15m(t), mean_1h(t), mean_24h(t), else 0

so a model with nothing to add falls back to persistence (the strongest naive forecast at
short horizons), and the trees spend their capacity on the deviations. The default loss is
the absolute error, the loss the evaluation reports (MAE, 1 − WAPE).

Pure: numpy, pandas and xgboost only. ``predict_array`` is the serving path (one
``inplace_predict`` per booster over a float32 matrix, no DataFrame work).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import xgboost as xgb

from hydatis.features.specs import feature_names

__all__ = ["FORMAT_VERSION", "RESOURCES", "LoadPredictor"]

FORMAT_VERSION = 1
RESOURCES = ("cpu", "mem")
_META_FILE = "load_predictor.json"
_KEYS = ["node_id", "event_timestamp"]
_BASE_CHAIN = ("util", "ewma_10m", "mean_15m", "mean_1h", "mean_24h")


class LoadPredictor:
    """Predicts each node's CPU and memory utilisation ``horizon_s`` ahead.

    Parameters are stored unchanged (scikit-learn's estimator contract); the learned state
    ends in ``_``.

    Args:
        horizon_s: the horizon the labels were built for (s); recorded with the model.
        n_estimators: boosting rounds per resource (an upper bound with early stopping).
        max_depth: tree depth.
        learning_rate: shrinkage per round.
        subsample: share of rows per tree.
        colsample_bytree: share of features per tree.
        min_child_weight: minimum hessian (≈ rows for squared error) per leaf.
        objective: the XGBoost loss on the change, ``reg:absoluteerror`` (default) or
            ``reg:squarederror`` / ``reg:pseudohubererror``.
        early_stopping_rounds: with an ``eval_set`` in :meth:`fit`, stop after this many
            rounds without improvement on it and keep the best round.
        features: the input columns; None = the 75 required node features.
        random_state: the seed.
        n_jobs: threads XGBoost uses.
    """

    def __init__(
        self,
        *,
        horizon_s: float = 300.0,
        n_estimators: int = 150,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 10.0,
        objective: str = "reg:absoluteerror",
        early_stopping_rounds: int | None = 20,
        features: list[str] | None = None,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.horizon_s = horizon_s
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.objective = objective
        self.early_stopping_rounds = early_stopping_rounds
        self.features = features
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (as scikit-learn's ``get_params``)."""
        return {
            "horizon_s": self.horizon_s,
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "objective": self.objective,
            "early_stopping_rounds": self.early_stopping_rounds,
            "features": None if self.features is None else list(self.features),
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }

    def _xgb_params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "tree_method": "hist",
            "seed": self.random_state,
            "nthread": self.n_jobs,
            "eval_metric": "mae",
        }

    # ------------------------------------------------------------------ arrays

    def _matrix(self, features_df: pd.DataFrame, names: list[str]) -> np.ndarray:
        missing = [c for c in names if c not in features_df.columns]
        if missing:
            raise KeyError(f"feature table lacks the model's feature(s) {missing[:5]}")
        return np.ascontiguousarray(features_df[names].to_numpy(dtype=np.float32))

    @staticmethod
    def _base_index(names: list[str]) -> dict[str, list[int]]:
        pos = {n: i for i, n in enumerate(names)}
        return {
            res: [pos[f"{res}_{s}"] for s in _BASE_CHAIN if f"{res}_{s}" in pos]
            for res in RESOURCES
        }

    @staticmethod
    def _base(x: np.ndarray, idx: list[int]) -> np.ndarray:
        """The value each change is added to: the first present column of the chain."""
        base = np.full(x.shape[0], np.nan, dtype=np.float32)
        for i in idx:
            base = np.where(np.isnan(base), x[:, i], base)
        return np.nan_to_num(base, nan=0.0)

    # ------------------------------------------------------------------ fit / predict

    def fit(
        self,
        features_df: pd.DataFrame,
        labels_df: pd.DataFrame,
        *,
        sample_weight: np.ndarray | None = None,
        eval_set: tuple[pd.DataFrame, pd.DataFrame] | None = None,
        rounds: dict[str, int] | None = None,
    ) -> Self:
        """Fit one booster per resource on the rows whose label is present.

        Args:
            features_df: ``node_id, event_timestamp`` and the feature columns.
            labels_df: ``node_id, event_timestamp, cpu_util_target, mem_util_target``
                (joined to the features on the keys).
            sample_weight: one weight per row of ``features_df`` (e.g. to balance sources).
            eval_set: ``(features, labels)`` of a later validation period for early
                stopping (see ``early_stopping_rounds``); never the test part.
            rounds: boosting rounds per resource (``{"cpu": n, "mem": m}``) instead of
                ``n_estimators``, e.g. to refit with the counts early stopping chose.

        Returns:
            self.

        Raises:
            ValueError: no row has a label.
        """
        names = list(self.features) if self.features is not None else feature_names()
        train = self._join(features_df, labels_df, sample_weight)
        valid = self._join(*eval_set, None) if eval_set is not None else None
        bidx = self._base_index(names)
        self.feature_names_ = names
        self.boosters_: dict[str, xgb.Booster] = {}
        self.best_iterations_: dict[str, int] = {}
        self.n_train_rows_: dict[str, int] = {}
        for res in RESOURCES:
            dtrain = self._dmatrix(train, names, bidx[res], res)
            if dtrain is None:
                raise ValueError(f"no training row has a {res}_util_target label")
            self.n_train_rows_[res] = int(dtrain.num_row())
            evals = [(dtrain, "train")]
            stop = None
            if valid is not None:
                dvalid = self._dmatrix(valid, names, bidx[res], res, ref=dtrain)
                if dvalid is not None and self.early_stopping_rounds:
                    evals.append((dvalid, "valid"))
                    stop = self.early_stopping_rounds
            n_rounds = int(rounds[res]) if rounds is not None else int(self.n_estimators)
            booster = xgb.train(
                self._xgb_params(),
                dtrain,
                num_boost_round=n_rounds,
                evals=evals,
                early_stopping_rounds=stop,
                verbose_eval=False,
            )
            best = booster.best_iteration if stop else n_rounds - 1
            if stop and best + 1 < booster.num_boosted_rounds():
                booster = booster[: best + 1]
            self.boosters_[res] = booster
            self.best_iterations_[res] = int(best + 1)
        return self

    @staticmethod
    def _join(
        features_df: pd.DataFrame, labels_df: pd.DataFrame, weight: np.ndarray | None
    ) -> pd.DataFrame:
        feats = features_df.reset_index(drop=True)
        if weight is not None:
            if len(weight) != len(feats):
                raise ValueError(f"{len(weight)} sample weights for {len(feats)} rows")
            feats = feats.assign(_weight=np.asarray(weight, dtype=np.float64))
        cols = [*_KEYS, *(f"{r}_util_target" for r in RESOURCES)]
        return feats.merge(labels_df[cols], on=_KEYS, how="inner", validate="one_to_one")

    def _dmatrix(
        self,
        joined: pd.DataFrame,
        names: list[str],
        bidx: list[int],
        res: str,
        ref: xgb.QuantileDMatrix | None = None,
    ) -> xgb.QuantileDMatrix | None:
        y = joined[f"{res}_util_target"].to_numpy(dtype=np.float64)
        keep = ~np.isnan(y)
        if not keep.any():
            return None
        x = self._matrix(joined.loc[keep], names)
        delta = y[keep] - self._base(x, bidx)
        w = joined.loc[keep, "_weight"].to_numpy() if "_weight" in joined.columns else None
        return xgb.QuantileDMatrix(
            x, label=delta, weight=w, feature_names=names, ref=ref, nthread=self.n_jobs
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "boosters_"):
            raise RuntimeError("LoadPredictor is not fitted: call fit() or load() first")

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        """Fast batch path: ``x`` (n, len(feature_names_)) in ``feature_names_`` order.

        Returns:
            (n, 2) float32: predicted CPU and memory utilisation at ``t + h``, in [0, 1].
        """
        self._check_fitted()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names_):
            raise ValueError(
                f"expected an (n, {len(self.feature_names_)}) array, got shape {x.shape}"
            )
        out = np.empty((x.shape[0], len(RESOURCES)), dtype=np.float32)
        if not x.shape[0]:
            return out
        bidx = self._base_index(self.feature_names_)
        for j, res in enumerate(RESOURCES):
            delta = self.boosters_[res].inplace_predict(x, validate_features=False)
            out[:, j] = np.clip(self._base(x, bidx[res]) + delta, 0.0, 1.0)
        return out

    def predict(self, features_df: pd.DataFrame) -> pd.DataFrame:
        """Predict for every row of a feature table (offline table or online vector).

        Returns:
            ``node_id, event_timestamp, cpu_util_pred, mem_util_pred`` (float64, [0, 1]),
            rows as ``features_df``.
        """
        self._check_fitted()
        pred = self.predict_array(self._matrix(features_df, self.feature_names_))
        out = features_df[_KEYS].reset_index(drop=True).copy()
        out["cpu_util_pred"] = pred[:, 0].astype(np.float64)
        out["mem_util_pred"] = pred[:, 1].astype(np.float64)
        return out

    def feature_importance(self) -> pd.DataFrame:
        """Gain importance per feature and resource, each normalised to sum to 1.

        Returns:
            ``feature, cpu_gain, mem_gain, gain`` (``gain`` = the mean of the two), sorted
            by ``gain`` descending; features never split on have 0.
        """
        self._check_fitted()
        out = pd.DataFrame({"feature": self.feature_names_})
        for res in RESOURCES:
            score = self.boosters_[res].get_score(importance_type="total_gain")
            gain = np.array([score.get(f, 0.0) for f in self.feature_names_], dtype=np.float64)
            total = gain.sum()
            out[f"{res}_gain"] = gain / total if total > 0 else gain
        out["gain"] = out[[f"{r}_gain" for r in RESOURCES]].mean(axis=1)
        return out.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write ``cpu.json``, ``mem.json`` (XGBoost JSON boosters) and
        ``load_predictor.json`` (parameters, feature names, horizon) into ``path``."""
        self._check_fitted()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        for res in RESOURCES:
            self.boosters_[res].save_model(out / f"{res}.json")
        meta = {
            "format_version": FORMAT_VERSION,
            "model": "load_predictor",
            "params": self.get_params(),
            "feature_names": list(self.feature_names_),
            "best_iterations": self.best_iterations_,
            "n_train_rows": self.n_train_rows_,
            "resources": list(RESOURCES),
        }
        (out / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: a file is missing.
            ValueError: an unknown format version.
        """
        src = Path(path)
        meta = json.loads((src / _META_FILE).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{src / _META_FILE}: unknown format {meta.get('format_version')}")
        model = cls(**meta["params"])
        model.feature_names_ = list(meta["feature_names"])
        model.best_iterations_ = {k: int(v) for k, v in meta["best_iterations"].items()}
        model.n_train_rows_ = {k: int(v) for k, v in meta["n_train_rows"].items()}
        model.boosters_ = {}
        for res in RESOURCES:
            booster = xgb.Booster()
            booster.load_model(src / f"{res}.json")
            booster.set_param({"nthread": model.n_jobs})
            model.boosters_[res] = booster
        return model


def infer_latency_ms(
    model: LoadPredictor, n_nodes: int = 5000, repeats: int = 20, *, seed: int = 0
) -> float:
    """Median wall time of one :meth:`LoadPredictor.predict_array` call on a batch.

    The batch holds ``n_nodes`` rows of plausible feature values (utilisation-like
    numbers in [0, 1], about 5% missing), built once outside the timing; one warm-up call
    precedes the ``repeats`` timed calls.

    Returns:
        Milliseconds (median over ``repeats``).
    """
    model._check_fitted()
    rng = np.random.default_rng(seed)
    x = rng.random((n_nodes, len(model.feature_names_)), dtype=np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    model.predict_array(x)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        model.predict_array(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)
