"""The node anomaly detector: an ensemble of Isolation Forests and a robust z-score
detector, combined by weighted soft voting into a score in [0, 1], plus the baselines it
is compared with.

Fit (on one node's or one cluster's normal history, unlabelled):

1. robust scaling: ``z = (x - median) / s`` with ``s = max(1.4826 * MAD,
   (q99 - q1) / 4.65, 1e-3 * max(1, |median|))`` (the quantile range keeps a mostly
   constant, spiky metric from getting a zero scale); NaN becomes 0 for the forests;
2. the history is split in time: the first ``1 - validation_fraction`` fits, the tail
   validates (thresholds only);
3. ``n_forests`` Isolation Forests, each on a random ``feature_fraction`` of the features
   with its own seed; raw score ``-score_samples`` (higher = more anomalous);
4. the statistical member: raw score = root mean square of the ``stat_top_k`` largest
   ``min(|z_j|, mad_z)``; a NaN in a
   feature that is almost never missing in training counts as ``z_clip`` (a silent
   exporter is an anomaly);
5. every member m is calibrated on the validation tail: ``t_m`` = its ``1 - contamination``
   quantile, ``s_m = t_m - median``, and
   its vote is ``v_m = u / (1 + u)`` with ``u = max(raw - median, 0) / s_m``: 0 at the
   validation median, 0.5 at its own threshold, towards 1 beyond, never saturating
   (the ranking of strong anomalies is kept, which AUC-PR needs);
6. score = ``stat_weight * v_stat + (1 - stat_weight) * mean(v_forest)``, in [0, 1];
   threshold = ``max(vote_threshold, 1 - contamination quantile of the validation
   scores)``; ``flag`` = score at or above it for ``min_run`` consecutive samples.

Baselines (:class:`ZScoreBaseline`, :class:`PCABaseline`, :class:`IForestBaseline`) use
the same split and the same quantile rule on their own raw score.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

__all__ = [
    "AnomalyDetector",
    "IForestBaseline",
    "PCABaseline",
    "ZScoreBaseline",
    "persist",
]

MODEL_FILE = "anomaly_detector.pkl"
META_FILE = "anomaly_detector.json"
_MISSING_RATE = 0.01  # features NaN in under 1% of training rows: NaN is anomalous


def _robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and robust scales (1.4826 MAD, else std, else a small floor)."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(x, axis=0)
            mad = 1.4826 * np.nanmedian(np.abs(x - med), axis=0)
            q01, q99 = np.nanquantile(x, [0.01, 0.99], axis=0)
    med = np.nan_to_num(med, nan=0.0)
    # A mostly constant, spiky metric has MAD 0: the 1-99% range (normal-equivalent)
    # keeps its rare normal spikes from reading as huge z.
    wide = np.nan_to_num((q99 - q01) / 4.65, nan=0.0)
    floor = 1e-3 * np.maximum(1.0, np.abs(med))
    scale = np.maximum(np.maximum(np.nan_to_num(mad, nan=0.0), wide), floor)
    return med, scale


def persist(min_run: int, flags: np.ndarray) -> np.ndarray:
    """Flags kept only where the last ``min_run`` samples (this one included) are all set.

    Causal: a sample's decision reads no later sample. ``min_run <= 1`` changes nothing.
    """
    f = np.asarray(flags, dtype=bool)
    if min_run <= 1 or not f.size:
        return f
    c = np.cumsum(np.r_[0, f.astype(np.int64)])
    idx = np.arange(f.size)
    lo = np.maximum(idx + 1 - min_run, 0)
    full = (c[idx + 1] - c[lo]) == min_run
    return full & (idx + 1 >= min_run)


def _split(n: int, validation_fraction: float) -> int:
    """Rows ``[:k]`` fit, ``[k:]`` validate; with too little data both use everything."""
    k = round(n * (1.0 - validation_fraction))
    return k if 16 <= k < n - 16 else n


class _QuantileRule:
    """Fit a raw scorer on the head of the history, threshold at a quantile of the tail."""

    contamination: float
    validation_fraction: float
    min_run: int

    def _fit_raw(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _z(self, x: np.ndarray) -> np.ndarray:
        """Robust z-scores against the fitted ``center_`` / ``scale_``, clipped."""
        return np.clip(np.nan_to_num((x - self.center_) / self.scale_, nan=0.0), -1e3, 1e3)

    def raw_score(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Higher = more anomalous."""
        raise NotImplementedError

    def fit(self, x_train: np.ndarray, feature_names: Sequence[str] | None = None) -> Self:
        """Fit on the first part of ``x_train``, choose the threshold on its tail."""
        x = np.asarray(x_train, dtype=np.float64)
        self.feature_names_ = list(feature_names or [f"f{i}" for i in range(x.shape[1])])
        k = _split(len(x), self.validation_fraction)
        self._fit_raw(x[:k])
        val = x[k:] if k < len(x) else x
        self.threshold_ = float(np.quantile(self.raw_score(val), 1.0 - self.contamination))
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """The raw score (the baselines are not mapped to [0, 1]; ranking is what counts)."""
        return self.raw_score(np.asarray(x, dtype=np.float64))

    def flag(self, x: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Score at or above the threshold for ``min_run`` consecutive samples."""
        s = self.score(x) if scores is None else scores
        return persist(self.min_run, s >= self.threshold_)


class ZScoreBaseline(_QuantileRule):
    """Per-feature z-score (mean / standard deviation of the fit part); score = max |z|."""

    def __init__(
        self, *, contamination: float = 0.01, validation_fraction: float = 0.3, min_run: int = 1
    ) -> None:
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.min_run = min_run

    def _fit_raw(self, x: np.ndarray) -> None:
        self.mean_ = np.nan_to_num(np.nanmean(x, axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
        self.std_ = np.where(std > 1e-6, std, 1e-6)

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """max_j |x_j - mean_j| / std_j (NaN counts as the mean)."""
        z = np.abs(np.nan_to_num((x - self.mean_) / self.std_, nan=0.0))
        return np.minimum(z, 1e6).max(axis=1)


class PCABaseline(_QuantileRule):
    """PCA reconstruction error on robust-scaled data, components explaining ``variance``."""

    def __init__(
        self,
        *,
        variance: float = 0.9,
        contamination: float = 0.01,
        validation_fraction: float = 0.3,
        min_run: int = 1,
        random_state: int = 0,
    ) -> None:
        self.variance = variance
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.min_run = min_run
        self.random_state = random_state

    def _fit_raw(self, x: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        self.center_, self.scale_ = _robust_scale(x)
        z = self._z(x)
        n_comp = min(z.shape[1], z.shape[0])
        if n_comp > 1:
            self.pca_ = PCA(n_components=self.variance, random_state=self.random_state).fit(z)
        else:
            self.pca_ = None

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """Squared error of the projection onto the kept components."""
        z = self._z(x)
        if self.pca_ is None:
            return (z**2).sum(axis=1)
        rec = self.pca_.inverse_transform(self.pca_.transform(z))
        return ((z - rec) ** 2).sum(axis=1)


class IForestBaseline(_QuantileRule):
    """One Isolation Forest on all (robust-scaled) features."""

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        contamination: float = 0.01,
        validation_fraction: float = 0.3,
        min_run: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.min_run = min_run
        self.random_state = random_state

    def _fit_raw(self, x: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        self.center_, self.scale_ = _robust_scale(x)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(x)),
            random_state=self.random_state,
        ).fit(self._z(x))

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """``-score_samples``: higher = shorter paths = more anomalous."""
        return -self.forest_.score_samples(self._z(x))


class AnomalyDetector:
    """Isolation Forest ensemble + robust z-score detector, soft-voted into [0, 1].

    Args:
        n_forests: Isolation Forests in the ensemble.
        n_estimators: trees per forest.
        max_samples: rows each tree is grown on.
        feature_fraction: share of the features each forest sees (at least one).
        contamination: the share of validation samples allowed above a threshold: every
            member's threshold and the ensemble's are the ``1 - contamination`` quantile of
            their validation scores.
        validation_fraction: the tail of the training history used only for thresholds.
        vote_threshold: the lowest ensemble threshold (0.5: a weighted majority of the
            members must be past their own thresholds, in soft-vote terms).
        mad_z: the robust |z| at which one metric counts fully in the statistical member
            (larger |z| is clipped there).
        stat_weight: the statistical member's share of the vote; the forests share the
            rest equally.
        stat_top_k: how many of the largest robust |z| the statistical member averages.
        z_clip: robust z is clipped here for the forests (also the |z| of an
            unexpected NaN).
        min_run: consecutive samples at or above the threshold before a sample is flagged.
        derived: extra internal columns ``(a, b)`` computed as ``a - b`` from the named
            input columns (e.g. ``("cpu_util", "cpu_mean_1h")``: the deviation from the
            node's own recent level); the inputs stay the named columns.
        random_state: seeds the feature subsets and the forests.
        n_jobs: threads per forest.
    """

    def __init__(
        self,
        *,
        n_forests: int = 5,
        n_estimators: int = 100,
        max_samples: int = 256,
        feature_fraction: float = 0.7,
        contamination: float = 0.01,
        validation_fraction: float = 0.3,
        vote_threshold: float = 0.5,
        mad_z: float = 6.0,
        stat_weight: float = 0.5,
        stat_top_k: int = 3,
        z_clip: float = 1000.0,
        min_run: int = 1,
        derived: Sequence[tuple[str, str]] = (),
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_forests = n_forests
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.feature_fraction = feature_fraction
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.vote_threshold = vote_threshold
        self.mad_z = mad_z
        self.stat_weight = stat_weight
        self.stat_top_k = stat_top_k
        self.z_clip = z_clip
        self.min_run = min_run
        self.derived = derived
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- parameters ---------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (sklearn style)."""
        keys = [
            "n_forests",
            "n_estimators",
            "max_samples",
            "feature_fraction",
            "contamination",
            "validation_fraction",
            "vote_threshold",
            "mad_z",
            "stat_weight",
            "stat_top_k",
            "z_clip",
            "min_run",
            "derived",
            "random_state",
            "n_jobs",
        ]
        params = {k: getattr(self, k) for k in keys}
        params["derived"] = [list(p) for p in self.derived]
        return params

    # -- internal columns -----------------------------------------------------------------

    def _columns(self, x: np.ndarray) -> np.ndarray:
        """The input columns plus the derived differences, float64."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != len(self.feature_names_):
            raise ValueError(
                f"expected {len(self.feature_names_)} features "
                f"({self.feature_names_[:3]}...), got {x.shape[1]}"
            )
        if not self.derived_idx_:
            return x
        extra = np.stack([x[:, a] - x[:, b] for a, b in self.derived_idx_], axis=1)
        return np.concatenate([x, extra], axis=1)

    def _z(self, cols: np.ndarray) -> np.ndarray:
        z = (cols - self.center_) / self.scale_
        return np.clip(z, -self.z_clip, self.z_clip)

    def _abs_z(self, z: np.ndarray) -> np.ndarray:
        """|z| with an unexpected NaN counted as ``z_clip`` and an expected one as 0."""
        a = np.abs(z)
        a = np.where(np.isnan(a) & self.expect_present_, self.z_clip, a)
        return np.nan_to_num(a, nan=0.0)

    def _stat_raw(self, z: np.ndarray) -> np.ndarray:
        """Root mean square of the ``stat_top_k`` largest |z| clipped at ``mad_z``: a few
        metrics far off count, without one unbounded metric drowning the rest."""
        a = np.minimum(self._abs_z(z), self.mad_z)
        k = min(a.shape[1], max(1, self.stat_top_k))
        top = np.partition(a, a.shape[1] - k, axis=1)[:, a.shape[1] - k :]
        return np.sqrt((top**2).mean(axis=1))

    def _members_raw(self, z: np.ndarray) -> np.ndarray:
        """Raw scores, one column per member: the forests, then the statistical one."""
        zf = np.nan_to_num(z, nan=0.0)
        cols = [
            -f.score_samples(zf[:, idx])
            for f, idx in zip(self.forests_, self.subsets_, strict=True)
        ]
        cols.append(self._stat_raw(z))
        return np.stack(cols, axis=1)

    def _votes(self, raw: np.ndarray) -> np.ndarray:
        u = np.maximum(raw - self.member_med_, 0.0) / self.member_spread_
        return u / (1.0 + u)

    def _combine(self, votes: np.ndarray) -> np.ndarray:
        return self.stat_weight * votes[:, -1] + (1.0 - self.stat_weight) * votes[:, :-1].mean(
            axis=1
        )

    # -- the estimator --------------------------------------------------------------------

    def fit(self, X_train: np.ndarray, feature_names: Sequence[str] | None = None) -> Self:
        """Fit on normal (unlabelled) history, rows in time order.

        Args:
            X_train: ``(n_samples, n_features)``; NaN allowed.
            feature_names: the column names (default ``f0, f1, ...``).

        Raises:
            ValueError: fewer than 2 rows, or a derived column names an unknown feature.
        """
        from sklearn.ensemble import IsolationForest

        x = np.asarray(X_train, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"need a 2-D array with at least 2 rows, got shape {x.shape}")
        self.feature_names_ = list(feature_names or [f"f{i}" for i in range(x.shape[1])])
        index = {n: i for i, n in enumerate(self.feature_names_)}
        missing = [n for pair in self.derived for n in pair if n not in index]
        if missing:
            raise ValueError(f"derived columns name unknown features: {missing}")
        self.derived_idx_ = [(index[a], index[b]) for a, b in self.derived]
        self.columns_ = self.feature_names_ + [f"{a}-{b}" for a, b in self.derived]
        cols = self._columns(x)
        k = _split(len(cols), self.validation_fraction)
        fit, val = cols[:k], (cols[k:] if k < len(cols) else cols)

        self.center_, self.scale_ = _robust_scale(fit)
        self.expect_present_ = np.mean(np.isnan(fit), axis=0) < _MISSING_RATE
        zfit = np.nan_to_num(self._z(fit), nan=0.0)
        rng = np.random.default_rng(self.random_state)
        d = cols.shape[1]
        m = max(1, min(d, round(self.feature_fraction * d)))
        self.subsets_: list[np.ndarray] = []
        self.forests_: list[Any] = []
        for _ in range(self.n_forests):
            idx = np.sort(rng.choice(d, size=m, replace=False))
            seed = int(rng.integers(0, 2**31 - 1))
            forest = IsolationForest(
                n_estimators=self.n_estimators,
                max_samples=min(self.max_samples, len(zfit)),
                random_state=seed,
                n_jobs=self.n_jobs,
            ).fit(zfit[:, idx])
            self.subsets_.append(idx)
            self.forests_.append(forest)

        q = 1.0 - self.contamination
        raw_val = self._members_raw(self._z(val))
        thr = np.quantile(raw_val, q, axis=0)
        med = np.median(raw_val, axis=0)
        spread = thr - med
        self.member_thr_ = thr
        self.member_med_ = med
        self.member_spread_ = np.where(spread > 1e-9, spread, np.maximum(np.abs(thr), 1.0) * 1e-3)
        val_scores = self._combine(self._votes(raw_val))
        self.quantile_threshold_ = float(np.quantile(val_scores, q))
        self.threshold_ = max(self.vote_threshold, self.quantile_threshold_)
        self.n_train_ = len(x)
        return self

    def _scores(self, z: np.ndarray) -> np.ndarray:
        s = self._combine(self._votes(self._members_raw(z)))
        # A metric that is (almost) never missing in training is missing now: the node's
        # exporter is silent. No vote is needed for that; the score is 1.
        silent = (np.isnan(z) & self.expect_present_).any(axis=1)
        return np.where(silent, 1.0, s)

    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score in [0, 1] per row (any number of nodes at once)."""
        return self._scores(self._z(self._columns(X)))

    def flag(self, X: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Whether each row is anomalous: score at or above ``threshold_`` for ``min_run``
        consecutive rows (rows of one series in time order when ``min_run > 1``)."""
        s = self.score(X) if scores is None else np.asarray(scores)
        return persist(self.min_run, s >= self.threshold_)

    def _isolation(self, zf: np.ndarray) -> np.ndarray:
        """Per-row, per-column share of isolation credit: in every tree, each split on the
        row's path credits its feature with ``1 / path length`` (short paths weigh more),
        summed over trees and forests and normalised to sum 1."""
        credit = np.zeros((zf.shape[0], len(self.columns_)))
        for forest, idx in zip(self.forests_, self.subsets_, strict=True):
            sub = zf[:, idx]
            for tree, feats in zip(forest.estimators_, forest.estimators_features_, strict=True):
                t = tree.tree_
                path = tree.decision_path(sub[:, feats].astype(np.float32)).tocsr()
                for r in range(zf.shape[0]):
                    nodes = path.indices[path.indptr[r] : path.indptr[r + 1]]
                    split = t.feature[nodes]
                    split = split[split >= 0]
                    if split.size:
                        np.add.at(credit[r], idx[feats[split]], 1.0 / (split.size + 1))
        total = credit.sum(axis=1, keepdims=True)
        return credit / np.where(total > 0, total, 1.0)

    def explain(self, X: np.ndarray, top: int = 5) -> list[dict[str, Any]]:
        """Which metrics drove each row's score.

        Every column gets ``contribution = (|z| share + isolation share) / 2``: its robust
        |z| over the row's total |z|, and its share of the forests' isolation credit
        (:meth:`_isolation`).

        Returns:
            One dict per row: ``score``, ``flag``, ``top`` (up to ``top`` dicts of
            ``feature, value, robust_z, isolation, contribution``, largest first).
        """
        cols = self._columns(X)
        z = self._z(cols)
        absz = self._abs_z(z)
        iso = self._isolation(np.nan_to_num(z, nan=0.0))
        zshare = absz / np.maximum(absz.sum(axis=1, keepdims=True), 1e-12)
        contrib = 0.5 * zshare + 0.5 * iso
        scores = self._scores(z)
        out: list[dict[str, Any]] = []
        for r in range(cols.shape[0]):
            order = np.argsort(-contrib[r], kind="stable")[:top]
            out.append(
                {
                    "score": float(scores[r]),
                    "flag": bool(scores[r] >= self.threshold_),
                    "top": [
                        {
                            "feature": self.columns_[j],
                            "value": float(cols[r, j]),
                            "robust_z": float(z[r, j]) if np.isfinite(z[r, j]) else None,
                            "isolation": float(iso[r, j]),
                            "contribution": float(contrib[r, j]),
                        }
                        for j in order
                    ],
                }
            )
        return out

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model into the directory ``path`` (a pickle we wrote ourselves,
        plus a JSON summary: parameters, features, thresholds)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / MODEL_FILE, "wb") as fh:
            pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        meta = {
            "params": self.get_params(),
            "features": self.feature_names_,
            "threshold": self.threshold_,
            "quantile_threshold": self.quantile_threshold_,
            "member_thresholds": self.member_thr_.tolist(),
        }
        (out / META_FILE).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save` (only our own artifacts: it unpickles)."""
        with open(Path(path) / MODEL_FILE, "rb") as fh:
            # the model's own artifact written by save(), never request input
            model = pickle.load(fh)  # nosec B301 own artifact
        if not isinstance(model, cls):
            raise TypeError(f"{path}: not an {cls.__name__} artifact")
        return model
