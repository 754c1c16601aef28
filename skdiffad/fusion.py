"""Fusion of anomaly detectors over several modalities of the same samples.

:class:`FusionDetector` is a meta-estimator in the spirit of scikit-learn's
``ColumnTransformer``: each *modality* is a group of columns of one table, or
one entry of a dict of arrays (images, series, tables of the same samples), with
its own detector. The modalities are fused early (one detector on their joined
features), late (each member's scores calibrated on its own training scores,
then combined) or dynamically (late, with per-sample weights from how far each
modality lies outside its training range, so a broken or missing modality does
not drown the others).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from pyod.models.base import BaseDetector
from scipy import sparse
from scipy.special import gammaln
from scipy.stats import chi2
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_array, check_is_fitted

from . import _dask
from ._persistence import check_stamp, load, save, stamp
from .base import PredictionsMixin, on_index
from .tabular import TabDiffusionDetector

__all__ = ["FusionDetector"]

FUSIONS = ("late", "dynamic", "early")
COMBINES = ("mean", "max", "sum")
CALIBRATIONS = ("standardise", "tail")
#: Training-range quantiles of the dynamic weights (a robust range: one training
#: outlier does not widen it).
RANGE_QUANTILES = (0.005, 0.995)
#: Training-score quantile above which tail calibration extrapolates exponentially.
TAIL_QUANTILE = 0.9


def _is_missing(block):
    """Per sample: is every value of this modality missing (NaN)?"""
    if isinstance(block, pd.DataFrame):
        return block.isna().all(axis=1).to_numpy()
    block = np.asarray(block)
    if block.ndim == 1:
        block = block[:, None]
    flat = block.reshape(len(block), -1)
    if flat.dtype.kind in "fc":
        return np.isnan(flat).all(axis=1)
    if flat.dtype.kind == "O":
        return pd.isna(pd.DataFrame(flat)).all(axis=1).to_numpy()
    return np.zeros(len(flat), dtype=bool)


def _numeric(block, name):
    """A modality's values as a float ``(n, d)`` array (images and windows flattened)."""
    if isinstance(block, pd.DataFrame):
        block = block.select_dtypes(include=[np.number, "bool"])
        if block.shape[1] == 0:
            return np.zeros((len(block), 0))
    try:
        values = np.asarray(block, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"modality {name!r} must be numeric here: {exc}") from None
    return values.reshape(len(values), -1) if values.ndim != 1 else values[:, None]


def _surprisal(training, scores):
    """``-log`` of each score's tail probability under the sorted ``training`` scores.

    Empirical (``(1 + #training >= score) / (n + 1)``) up to the training scores'
    :data:`TAIL_QUANTILE`; above it, the smaller of that and an exponential tail fitted
    to the excesses over the quantile (peaks over threshold), so that scores beyond
    every training score keep their order instead of sharing ``1 / (n + 1)``.
    """
    n = len(training)
    above = n - np.searchsorted(training, scores, side="left")
    log_p = np.log((1.0 + above) / (n + 1.0))
    threshold = np.quantile(training, TAIL_QUANTILE)
    excess = training[training > threshold] - threshold
    if len(excess) and excess.mean() > 0:
        share = max(len(excess) / n, 1.0 / (n + 1))
        log_tail = np.log(share) - (scores - threshold) / excess.mean()
        log_p = np.where(scores > threshold, np.minimum(log_p, log_tail), log_p)
    return -log_p


def _fisher(total, count):
    """Fisher's method: ``-log P(chi2 with 2 count dof > 2 total)``, for surprisals summing
    to ``total`` over ``count`` modalities; the asymptote where the float tail underflows."""
    surprisal = -chi2.logsf(2.0 * total, 2.0 * count)
    asymptote = total - (count - 1) * np.log(np.maximum(total, 1e-300)) + gammaln(count)
    return np.where(np.isfinite(surprisal), surprisal, asymptote)


def _take(block, rows):
    if rows is None:
        return block
    return block.iloc[rows] if isinstance(block, (pd.DataFrame, pd.Series)) else block[rows]


#: What a fit sets besides PyOD's scores, threshold and labels (replaced at once).
_FITTED = ("modalities_", "settings_", "_input_kind", "n_features_in_", "feature_names_in_",
           "members_", "early_detector_", "calibration_", "ranges_")


def _joined(blocks, input_kind):
    """Early fusion's input: the modalities side by side (a frame keeps its dtypes)."""
    if input_kind == "table":
        parts = list(blocks.values())
        if isinstance(parts[0], pd.DataFrame):
            return pd.concat(parts, axis=1)
        return np.hstack(parts)
    return np.hstack([_numeric(block, name) for name, block in blocks.items()])


def _calibrate(state, name, scores):
    """A member's raw scores on its training scores' scale (``state``: the fitted state)."""
    training = state["calibration_"][name]
    if state["settings_"]["calibration"] == "tail":
        calibrated = _surprisal(training, scores)
    else:
        std = training.std()
        calibrated = (scores - training.mean()) / (std if std > 0 else 1.0)
    return np.where(np.isnan(scores), np.nan, calibrated)


def _outside(state, name, block):
    low, high = state["ranges_"][name]
    values = _numeric(block, name)
    if values.shape[1] == 0:  # no numeric feature: no range to leave
        return np.zeros(len(values))
    half = np.maximum((high - low) / 2, 1e-12)
    observed = ~np.isnan(values)
    beyond = np.where(observed, np.maximum(np.abs(values - (high + low) / 2) / half - 1, 0), 0)
    # a sample with no observed value has weight 0 anyway (its modality is missing)
    return beyond.sum(axis=1) / np.maximum(observed.sum(axis=1), 1)


def _combine(blocks, raw, state):
    """Raw member scores (NaN: modality missing) -> one fused score per sample."""
    settings = state["settings_"]
    calibrated = np.column_stack([_calibrate(state, name, raw[name]) for name in blocks])
    present = ~np.isnan(calibrated)
    none = np.flatnonzero(~present.any(axis=1))
    if len(none):
        raise ValueError(f"every modality is missing for {len(none)} samples (the first "
                         f"at position {none[0]}); nothing to score them by")
    values = np.where(present, calibrated, 0.0)
    if settings["fusion"] == "dynamic":
        outside = np.column_stack([_outside(state, name, blocks[name]) for name in blocks])
        weights = np.where(present, 1.0 / (1.0 + np.nan_to_num(outside)), 0.0)
        # the weighted sum, scaled like the mean of a complete sample with equal weights
        return ((weights * values).sum(axis=1)
                / np.sqrt(present.shape[1] * (weights ** 2).sum(axis=1)))
    # Rows missing a modality combine fewer scores; each rule keeps their spread
    # under the null that of a complete row's (independent modalities).
    count, total = present.sum(axis=1), values.sum(axis=1)
    if settings["combine"] == "max":
        return np.where(present, calibrated, -np.inf).max(axis=1)
    if settings["combine"] == "sum" and settings["calibration"] == "tail":
        return _fisher(total, count)
    if settings["combine"] == "sum":
        return total / np.sqrt(count)  # Stouffer
    return total / np.sqrt(count * present.shape[1])  # the mean on complete rows


class FusionDetector(PredictionsMixin, _BaseComposition, BaseDetector):
    """Anomaly detector that fuses per-modality detectors: early, late or dynamic.

    Each modality is a ``(name, detector, columns)`` triple. ``columns`` picks
    the modality out of a table (column names of a DataFrame, integer positions,
    a slice, a boolean mask, or a callable that takes ``X`` and returns one of
    those), or is ``None`` when ``X`` is a dict of arrays holding the modality
    under ``name`` -- images, series and tables of the same samples, each given
    to its own detector. Any skdiffad or PyOD detector can be a member: it needs
    ``fit`` and a ``decision_function`` that grows with abnormality.

    Parameters
    ----------
    modalities : list of (str, estimator, columns) tuples
        The modalities: a unique name, an unfitted detector (cloned in fit) and
        the column selection (``None`` for dict input). Columns may not be
        shared by two modalities; columns no modality names are ignored.
    fusion : {"late", "dynamic", "early"}, default="late"
        ``"late"``: each member is fitted on its modality; its scores are
        calibrated on its own training scores (``calibration``) and combined
        (``combine``). ``"dynamic"``: as late, but each sample's calibrated
        scores are summed with weights ``w = 1 / (1 + o)`` and divided by
        ``sqrt(M sum(w^2))`` (the mean when the weights are equal), where
        ``o`` is how far the sample's modality lies outside the modality's
        training range (the mean over its features of the distance beyond the
        0.5-99.5 % training quantiles, in units of that range's half-width; 0
        inside it).
        ``"early"``: one detector (``early_detector``) on the modalities'
        features joined side by side; the members are not fitted.
    combine : {"mean", "max", "sum"}, default="mean"
        How late fusion combines the calibrated scores of a sample's ``k``
        present modalities (of ``M``): ``"mean"`` is their sum over
        ``sqrt(k M)`` (the mean when none is missing; a sample missing some
        keeps the spread of a complete one), ``"max"`` their largest, and
        ``"sum"`` Stouffer's sum over ``sqrt(k)`` with ``calibration=
        "standardise"`` or, with ``"tail"``, Fisher's method (``-log`` of the
        chi-squared tail probability of twice the summed surprisals, ``2k``
        degrees of freedom). Dynamic fusion always takes the weighted mean.
    calibration : {"standardise", "tail"}, default="standardise"
        ``"standardise"``: ``(score - mean) / std`` of the member's training
        scores. ``"tail"``: the surprisal ``-log p`` of the score's tail
        probability among the training scores, empirical up to their 90th
        percentile and an exponential tail fitted above it (peaks over
        threshold), so scores beyond every training score still rank.
    early_detector : estimator or None, default=None
        The detector of early fusion (cloned); ``None`` uses
        ``TabDiffusionDetector()``.
    contamination : float in (0, 0.5], default=0.1
        Expected share of anomalies; sets ``threshold_`` (PyOD's convention).

    Attributes
    ----------
    modalities_ : list of (str, columns) tuples
        Each modality's name and column selection as fitted (scoring reads
        these, not ``modalities``).
    settings_ : dict
        ``fusion``, ``combine`` and ``calibration`` as fitted (scoring reads
        these, not the parameters).
    members_ : dict of str to estimator
        The fitted detector of each modality (late and dynamic fusion).
    early_detector_ : estimator
        The fitted early-fusion detector (early fusion only).
    calibration_ : dict of str to ndarray
        Each member's sorted training scores (late and dynamic fusion).
    ranges_ : dict of str to ndarray of shape (2, n_features)
        Each modality's training range (dynamic fusion).
    decision_scores_ : ndarray of shape (n_samples,)
        Fused scores of the training samples.
    threshold_ : float
        Scores above it are labelled 1 by ``predict``.
    labels_ : ndarray of shape (n_samples,)
        0/1 labels of the training samples.
    n_features_in_ : int
        Columns of a table seen in fit (not set for dict input).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame seen in fit.

    See Also
    --------
    pyod.models.combination : score combiners over detectors of the same data.

    Notes
    -----
    A sample whose modality is entirely missing (all NaN) gives that modality
    weight 0 in late and dynamic fusion instead of failing: it is not passed to
    a member that does not accept NaN (scikit-learn's ``allow_nan`` tag), and
    a member that does accept it (skdiffad's detectors) sees it but its score
    is not used. A sample with every modality missing raises.

    Examples
    --------
    >>> import numpy as np
    >>> from pyod.models.knn import KNN
    >>> from skdiffad import FusionDetector
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> det = FusionDetector([("a", KNN(), [0, 1]), ("b", KNN(), [2, 3])]).fit(X)
    >>> det.modality_scores(X[:2]).columns.tolist()
    ['a', 'b']
    """

    _parameter_constraints: dict = {
        "modalities": [list],
        "fusion": [StrOptions(set(FUSIONS))],
        "combine": [StrOptions(set(COMBINES))],
        "calibration": [StrOptions(set(CALIBRATIONS))],
        "early_detector": [None, HasMethods(["fit", "decision_function"])],
        "contamination": [Interval(numbers.Real, 0, 0.5, closed="right")],
    }

    def __init__(self, modalities, *, fusion="late", combine="mean",
                 calibration="standardise", early_detector=None, contamination=0.1):
        self.modalities = modalities
        self.fusion = fusion
        self.combine = combine
        self.calibration = calibration
        self.early_detector = early_detector
        self.contamination = contamination

    # ----------------------------------------------------- parameters (ColumnTransformer's way)
    @property
    def _members(self):
        try:
            return [(name, detector) for name, detector, _ in self.modalities]
        except (TypeError, ValueError):  # not a list of triples: fit says what is wrong
            return []

    @_members.setter
    def _members(self, value):
        self.modalities = [(name, detector, columns) for (name, detector), (_, _, columns)
                           in zip(value, self.modalities)]

    def get_params(self, deep=True):
        """Parameters of this detector and, with ``deep``, of its members (``<name>__<param>``)."""
        return self._get_params("_members", deep=deep)

    def set_params(self, **params):
        """Set parameters, a member's with ``<name>__<param>`` or a whole member by ``<name>``."""
        self._set_params("_members", **params)
        return self

    # ------------------------------------------------------------------ input
    def _check_modalities(self):
        if not self.modalities:
            raise ValueError("modalities must hold at least one (name, detector, columns) tuple")
        names = []
        for entry in self.modalities:
            if not isinstance(entry, tuple) or len(entry) != 3:
                raise ValueError("each modality must be a (name, detector, columns) tuple, "
                                 f"got {entry!r}")
            name, detector, _ = entry
            if not isinstance(name, str) or not name or "__" in name:
                raise ValueError(f"modality names must be non-empty strings without '__', "
                                 f"got {name!r}")
            if self.fusion != "early" and not (hasattr(detector, "fit")
                                               and hasattr(detector, "decision_function")):
                raise TypeError(f"modality {name!r}: the detector must have fit and "
                                f"decision_function, got {type(detector).__name__}")
            names.append(name)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"modality names must be unique; repeated: {repeated}")
        self._validate_names(names)

    def _split(self, X, layout, record, reset):
        """``X`` -> {modality name: its block}, checking columns and shapes.

        ``layout`` is each modality's ``(name, columns)``; ``record`` holds the kind of
        input and its columns: filled in at fit (``reset``), checked against later.
        """
        if isinstance(X, dict) and not sparse.issparse(X):  # a DOK matrix is a dict
            return self._split_dict(X, layout, record, reset)
        return self._split_table(X, layout, record, reset)

    def _split_dict(self, X, layout, record, reset):
        if reset:
            record["_input_kind"] = "dict"
        elif record["_input_kind"] != "dict":
            raise ValueError("X is a dict of modalities but the detector was fitted on a table")
        blocks, n = {}, None
        for name, columns in layout:
            if columns is not None:
                raise ValueError(f"modality {name!r}: with a dict X, columns must be None "
                                 f"(the modality is X[{name!r}]), got {columns!r}")
            if name not in X:
                when = "fit" if reset else "scoring"
                raise ValueError(f"modality {name!r} is missing from X at {when}; X holds "
                                 f"{sorted(map(str, X))}")
            block = X[name]
            if not isinstance(block, (pd.DataFrame, pd.Series)):
                block = np.asarray(block)
            if block.ndim == 0:
                raise ValueError(f"modality {name!r} must hold one entry per sample, got a scalar")
            if n is not None and len(block) != n:
                raise ValueError(f"every modality must hold the same samples: {name!r} has "
                                 f"{len(block)}, the first has {n}")
            n = len(block)
            blocks[name] = block
        return blocks

    def _split_table(self, X, layout, record, reset):
        if reset:
            record["_input_kind"] = "table"
        elif record["_input_kind"] != "table":
            raise ValueError("X is a table but the detector was fitted on a dict of modalities")
        frame = isinstance(X, pd.DataFrame)
        if not frame:
            # scikit-learn's messages for sparse, complex, 1-D, empty or infinite input;
            # NaN passes: a modality missing for a sample is fusion's to handle
            X = check_array(X, dtype=None, ensure_all_finite="allow-nan",
                            ensure_min_samples=2 if reset else 1)
            if X.dtype.kind == "O":
                X = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        elif not len(X):
            raise ValueError("X has 0 samples; at least one is needed")
        names = np.asarray(X.columns, dtype=object) if frame else None
        if reset:
            record["n_features_in_"] = X.shape[1]
            if frame and all(isinstance(c, str) for c in names):
                record["feature_names_in_"] = names.astype(object)
        elif X.shape[1] != record["n_features_in_"]:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {record['n_features_in_']} features as input")
        blocks, owner = {}, {}
        for name, columns in layout:
            positions = self._positions(X, names, name, columns)
            for p in positions:
                label = names[p] if frame else p
                if p in owner:
                    raise ValueError(f"column {label!r} is in modalities {owner[p]!r} and "
                                     f"{name!r}; a column belongs to one modality")
                owner[p] = name
            blocks[name] = X.iloc[:, positions] if frame else X[:, positions]
        return blocks

    @staticmethod
    def _positions(X, names, modality, columns):
        if callable(columns):
            columns = columns(X)
        if columns is None:
            raise ValueError(f"modality {modality!r}: columns is None, which only a dict X "
                             "allows; give the modality's columns")
        n_columns = X.shape[1]
        if isinstance(columns, slice):
            positions = list(range(n_columns))[columns]
        else:
            selection = [columns] if isinstance(columns, (str, numbers.Integral)) else list(columns)
            if selection and all(isinstance(c, (bool, np.bool_)) for c in selection):
                if len(selection) != n_columns:
                    raise ValueError(f"modality {modality!r}: a boolean mask must have "
                                     f"{n_columns} entries, got {len(selection)}")
                positions = list(np.flatnonzero(selection))
            else:
                positions = []
                for c in selection:
                    if isinstance(c, (numbers.Integral, np.integer)):
                        if not -n_columns <= c < n_columns:
                            raise ValueError(f"modality {modality!r}: column {c} is out of "
                                             f"range for X with {n_columns} columns")
                        positions.append(int(c) % n_columns)
                    elif names is None:
                        raise ValueError(f"modality {modality!r}: column {c!r} is a name, "
                                         "but X is an array; pass a DataFrame or positions")
                    else:
                        found = np.flatnonzero(names == c)
                        if not len(found):
                            raise ValueError(f"modality {modality!r}: column {c!r} is not "
                                             "in X")
                        positions.append(int(found[0]))
        if not positions:
            raise ValueError(f"modality {modality!r} selects no column of X, which has "
                             f"{n_columns} feature(s)")
        return positions

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Fit every member on its modality (or the early detector on all of them).

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_samples, n_features) or dict
            A table whose modalities ``columns`` select, or a dict holding each
            modality under its name (arrays with one entry per sample).
        y : Ignored
            Present for API consistency.

        Returns
        -------
        self : FusionDetector
        """
        self._validate_params()
        self._check_modalities()
        if _dask.is_dask(X):
            raise TypeError("FusionDetector.fit takes data in memory; to fit on a Dask "
                            "table, fit on a sample of it, e.g. X.sample(frac=...).compute()"
                            " (scoring a Dask table works block by block)")
        layout = [(name, columns) for name, _, columns in self.modalities]
        settings = {"fusion": self.fusion, "combine": self.combine,
                    "calibration": self.calibration}
        # the fitted state is built here and assigned at once at the end, so a fit that
        # fails part-way (a member refusing its modality) leaves the previous one whole
        state = {"modalities_": layout, "settings_": settings}
        blocks = self._split(X, layout, state, reset=True)
        missing = {name: _is_missing(block) for name, block in blocks.items()}
        for name, absent in missing.items():
            if absent.all():
                raise ValueError(f"modality {name!r} has no observed sample in the training "
                                 "data (every value is missing)")
        n = len(next(iter(missing.values())))
        if n < 2:
            raise ValueError(f"FusionDetector needs at least 2 training samples, got {n}")
        if self.fusion == "early":
            joined = _joined(blocks, state["_input_kind"])
            state["early_detector_"] = early = clone(self._early_prototype()).fit(joined)
            scores = getattr(early, "decision_scores_", None)
            if scores is None:
                scores = early.decision_function(joined)
            scores = np.asarray(scores, dtype=np.float64).ravel()
        else:
            members, calibration, training = {}, {}, {}
            for name, detector, _ in self.modalities:
                member, scores = self._fit_member(name, detector, blocks[name], missing[name])
                members[name] = member
                calibration[name] = np.sort(scores[~np.isnan(scores)])
                training[name] = scores
            state.update(members_=members, calibration_=calibration)
            if self.fusion == "dynamic":
                state["ranges_"] = {name: self._range(blocks[name], missing[name], name)
                                    for name in blocks}
            # the members' own training scores, not a second pass over the training data
            # (PyOD's KNN, for one, scores a training row apart from itself only there)
            scores = _combine(blocks, training, state)
        for attribute in _FITTED:
            self.__dict__.pop(attribute, None)
        self.__dict__.update(state)
        self.decision_scores_ = scores
        self._classes = 2
        self._process_decision_scores()
        return self

    def _early_prototype(self):
        if self.early_detector is not None:
            return self.early_detector
        return TabDiffusionDetector()

    @staticmethod
    def _accepts_nan(detector):
        try:
            return bool(get_tags(detector).input_tags.allow_nan)
        except Exception:  # noqa: BLE001 - a foreign estimator without tags: assume not
            return False

    def _fit_member(self, name, detector, block, absent):
        """A fitted clone and its training scores, one per sample (NaN where missing)."""
        member = clone(detector)
        rows = None if self._accepts_nan(member) or not absent.any() else np.flatnonzero(~absent)
        part = _take(block, rows)
        member.fit(part)
        training = getattr(member, "decision_scores_", None)
        if training is None:
            training = member.decision_function(part)
        training = np.asarray(training, dtype=np.float64).ravel()
        expected = len(absent) if rows is None else len(rows)
        if len(training) != expected:
            raise ValueError(f"modality {name!r}: the member gave {len(training)} training "
                             f"scores for {expected} samples")
        if not np.all(np.isfinite(training)):
            raise ValueError(f"modality {name!r}: the member gave non-finite training scores")
        scores = np.full(len(absent), np.nan)
        if rows is None:
            scores[~absent] = training[~absent]
        else:
            scores[rows] = training
        return member, scores

    def _range(self, block, absent, name):
        values = _numeric(_take(block, np.flatnonzero(~absent)), name)
        with np.errstate(all="ignore"):
            low, high = np.nanquantile(values, RANGE_QUANTILES, axis=0)
        return np.stack([low, high])

    # ---------------------------------------------------------------- scoring
    def _member_scores(self, name, block, absent):
        """A member's raw scores, NaN where the modality is missing."""
        member = self.members_[name]
        scores = np.full(len(absent), np.nan)
        if self._accepts_nan(member):
            raw = np.asarray(member.decision_function(block), dtype=np.float64).ravel()
            scores[~absent] = raw[~absent]
        elif not absent.all():
            rows = np.flatnonzero(~absent)
            scores[rows] = np.asarray(member.decision_function(_take(block, rows)),
                                      dtype=np.float64).ravel()
        return scores

    def _state(self):
        """The fitted state that scoring reads."""
        check_is_fitted(self, ["decision_scores_", "settings_"])
        return {name: getattr(self, name) for name in _FITTED if hasattr(self, name)}

    def _fuse(self, blocks, missing, state):
        return _combine(blocks, {name: self._member_scores(name, blocks[name], missing[name])
                                 for name in blocks}, state)

    def _blocks(self, X, state):
        blocks = self._split(X, state["modalities_"], state, reset=False)
        return blocks, {name: _is_missing(block) for name, block in blocks.items()}

    def decision_function(self, X):
        """Fused anomaly score of each sample; higher means more abnormal.

        Parameters
        ----------
        X : DataFrame, array-like or dict
            Data of the kind seen in fit. A Dask DataFrame or array (a table) is
            scored lazily, block by block, when every member scores each row alone
            (skdiffad's table and image detectors, PyOD's tabular ones).

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64, or pandas.Series
            A Series named ``"decision_function"`` on the index of a pandas ``X``
            (for a dict, of its first modality's block when that is pandas); a
            Dask array or Series for a Dask input.
        """
        if _dask.is_dask(X):
            self._check_rowwise_dask("decision_function")
            return _dask.rowwise(self, "decision_function", X)
        return on_index(self._index_source(X), self._scores(X), "decision_function")

    def _scores(self, X):
        """:meth:`decision_function` of an in-memory ``X`` as an array (what the labels,
        probabilities and confidences are computed from)."""
        state = self._state()
        blocks, missing = self._blocks(X, state)
        if state["settings_"]["fusion"] == "early":
            joined = _joined(blocks, state["_input_kind"])
            return np.asarray(self.early_detector_.decision_function(joined), dtype=np.float64)
        return self._fuse(blocks, missing, state)

    def _index_source(self, X):
        """A dict's first modality block (the results for ``X`` take its index when it is
        a pandas object), or ``X`` itself."""
        if isinstance(X, dict) and not sparse.issparse(X):
            return X[self._state()["modalities_"][0][0]]
        return X

    def _check_rowwise_dask(self, method):
        """A Dask table is scored block by block: every member must score rows alone."""
        state = self._state()
        fitted = ([self.early_detector_] if state["settings_"]["fusion"] == "early"
                  else list(self.members_.values()))
        # a skdiffad member says so through its modality; PyOD's tabular detectors score rows
        series = [type(d).__name__ for d in fitted
                  if not getattr(getattr(d, "modality_", None), "rowwise", True)]
        if series:
            raise TypeError(f"FusionDetector.{method} scores a Dask collection block by "
                            "block, which needs members that score each row alone; "
                            f"{series[0]} scores steps from their neighbours. Score such a "
                            "modality with its own detector's decision_function (it takes "
                            "a Dask series)")

    def modality_scores(self, X):
        """Each modality's calibrated score: which modality raised a sample's score.

        Parameters
        ----------
        X : DataFrame, array-like or dict
            Data of the kind seen in fit.

        Returns
        -------
        scores : DataFrame of shape (n_samples, n_modalities)
            A column per modality (NaN where the modality is missing), in the
            units of ``calibration`` (late and dynamic fusion).

        Raises
        ------
        ValueError
            For early fusion, which has one joined model and no per-modality score.
        """
        state = self._state()
        if state["settings_"]["fusion"] == "early":
            raise ValueError("early fusion scores the modalities jointly and has no "
                             "per-modality score; use fusion='late' or 'dynamic'")
        blocks, missing = self._blocks(X, state)
        source = self._index_source(X)
        index = source.index if isinstance(source, (pd.DataFrame, pd.Series)) else None
        return pd.DataFrame({name: _calibrate(state, name, self._member_scores(
            name, blocks[name], missing[name])) for name in blocks}, index=index)

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        return stamp(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(check_stamp(dict(state), type(self).__name__))

    def save(self, path):
        """Save to the folder ``path`` without pickle (see
        :meth:`skdiffad.TabDiffusionDetector.save`); every member must be a skdiffad
        detector and every column selection a plain value (not a callable)."""
        return save(self, path)

    @classmethod
    def load(cls, path):
        """A fusion detector saved by :meth:`save` in the folder ``path``."""
        return load(path, cls)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a modality missing for a sample is always handled; other NaNs are the members' call
        detectors = ([self.early_detector] if self.fusion == "early" else
                     [entry[1] for entry in self.modalities
                      if isinstance(entry, tuple) and len(entry) == 3])
        tags.input_tags.allow_nan = bool(detectors) and all(
            d is None or self._accepts_nan(d) for d in detectors)
        return tags
