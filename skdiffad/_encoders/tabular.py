"""Tables: numpy arrays and mixed-type DataFrames as rows of ``(d,)`` samples.

Numeric columns are standardised with training statistics (mean and standard
deviation of the observed values). Categorical columns (pandas ``category``,
``object``, ``string`` and ``bool``) become one-hot codes in ``{-1, +1}``; a category
never seen in training activates no code (all ``-1``), so it is scored, not
rejected. Missing entries (NaN/None/NA) are never imputed into the model: they are
recorded in a boolean observation mask that the training loss and the scorers
respect (MissDiff); in the matrix they hold 0, the training mean.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from .._core.samples import ArraySamples
from ._base import CLIP, Encoded, InputRecord, column_moments, standardise, validated

__all__ = ["TabularEncoder"]

# Rows standardised at once: the float64 temporaries of a block (a few MiB) are reused by
# the allocator from one block to the next, where those of a million rows took fresh
# pages on every call (a tenth of the scoring time of 1M x 20 rows by the index).
_ENCODE_ROWS = 1 << 15


#: A numeric column is discrete (decoded onto its training values) when its
#: values repeat: at most half as many distinct values as observed entries.
#: Generated values between such a column's levels are off the data's support,
#: which a two-sample classifier finds at once (C2ST 1.0 on ADBench's cardio,
#: whose integer-valued columns have up to 50 levels).


def _snap(values, levels, clip=False):
    """Each value inside ``[levels[0], levels[-1]]`` moved to its nearest level;
    values outside stay where they are, or with ``clip`` go to the end level."""
    if clip:
        values = np.clip(values, levels[0], levels[-1])
    inside = (values >= levels[0]) & (values <= levels[-1])
    right = np.clip(np.searchsorted(levels, values), 1, len(levels) - 1)
    left = right - 1
    nearest = np.where(np.abs(values - levels[left]) <= np.abs(levels[right] - values),
                       levels[left], levels[right])
    return np.where(inside, nearest, values)


def _encoded(Z, mask):
    return Encoded(ArraySamples(Z, mask))


def _is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


class TabularEncoder(InputRecord):
    """Fitted column encoder of :class:`~skdiffad.TabDiffusionDetector`.

    Each row becomes one sample of shape ``(n_encoded_features,)``. The encoder
    records the number and names of the training columns itself
    (``n_features_in_``, ``feature_names_in_``, scikit-learn's rules) and checks
    later input against them.

    Parameters
    ----------
    levels : bool, default=True
        Record the training values of discrete numeric columns (``levels_``),
        which :meth:`inverse_transform` decodes onto; a detector that cannot
        sample skips that pass over the columns.
    owner : str, default="TabDiffusionDetector"
        The detector's name, for error messages.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_numeric,)
        Standardisation of the numeric columns.
    categories_ : dict
        Categories of each categorical column, in code order.
    levels_ : dict of int to ndarray
        The sorted training values of each discrete numeric column (by its
        position among the numeric columns); empty with ``levels=False``.
    missing_rates_ : ndarray of shape (n_features,)
        Share of missing entries of each training column, in column order.
    """

    def __init__(self, levels=True, owner="TabDiffusionDetector"):
        self.levels = levels
        self.owner = owner

    def fit_transform(self, X):
        """Fit on the training table and encode it (an :class:`Encoded`)."""
        if isinstance(X, pd.DataFrame):
            return _encoded(*self._fit_frame(X))
        X = self._validate_array(X, reset=True)
        self.kind_ = "array"
        self.missing_rates_ = np.isnan(X).mean(axis=0)
        self.numeric_ = list(range(X.shape[1]))
        self.categories_ = {}
        self._fit_numeric(X, [str(j) for j in range(X.shape[1])])
        return _encoded(*self._encode_numeric(X))

    def transform(self, X):
        """Encode a table of the fitted kind (an :class:`Encoded`)."""
        if self.kind_ == "frame":
            if not isinstance(X, pd.DataFrame):
                X = self._array_to_frame(X)
            return _encoded(*self._transform_frame(X))
        if isinstance(X, pd.DataFrame) and any(_is_categorical(X[c]) for c in X.columns):
            raise ValueError(
                "X has categorical columns but the detector was fitted on a numeric "
                "array; fit it on a DataFrame to use categorical columns"
            )
        X = self._validate_array(X, reset=False)
        return _encoded(*self._encode_numeric(X))

    def inverse_transform(self, Z, clip=False):
        """Decode encoded rows back into the fitted kind of table.

        The inverse of :meth:`transform` on complete rows, for samples drawn in
        the encoded space. Numeric columns are de-standardised; integer columns
        are rounded, then cast back. A *discrete* numeric column (at most half
        as many distinct training values as observed entries: its values
        repeat) takes the nearest of its training values inside their range
        and keeps a value beyond it (a generated anomaly may lie there), or
        with ``clip`` takes the end value there too; a constant one takes its
        value. Each categorical column takes
        the category of its largest one-hot code, so every decoded entry is a
        category seen in training. Nothing is NaN: a generated row is complete.

        Parameters
        ----------
        Z : array-like of shape (n, n_encoded_features)
        clip : bool, default=False
            Decode every entry of a discrete column onto its training values,
            beyond their range too (normal samples: a count is never below its
            smallest training value). Continuous columns are never clipped.

        Returns
        -------
        X : ndarray of shape (n, n_features) or pandas.DataFrame
            A float array for a detector fitted on an array; a DataFrame with the
            training columns, in their order and dtypes, for one fitted on a frame.
        """
        Z = np.asarray(Z, dtype=np.float64)
        n_numeric = len(self.numeric_)
        width = n_numeric + sum(len(c) for c in self.categories_.values())
        if Z.ndim != 2 or Z.shape[1] != width:
            raise ValueError(f"Z must have shape (n, {width}), got {Z.shape}")
        numeric = Z[:, :n_numeric] * self.scale_ + self.mean_
        for j, levels in self.levels_.items():
            numeric[:, j] = (_snap(numeric[:, j], levels, clip) if len(levels) > 1
                             else levels[0])
        if self.kind_ != "frame":
            return numeric
        decoded, start = {}, n_numeric
        for c, cats in self.categories_.items():
            decoded[c] = np.asarray(cats, dtype=object)[Z[:, start:start + len(cats)].argmax(1)]
            start += len(cats)
        for j, c in enumerate(self.numeric_):
            integer = pd.api.types.is_integer_dtype(self.dtypes_[c])
            decoded[c] = np.round(numeric[:, j]) if integer else numeric[:, j]
        frame = pd.DataFrame({c: decoded[c] for c in self.columns_})
        for c, dtype in self.dtypes_.items():
            if not pd.api.types.is_object_dtype(dtype):
                frame[c] = frame[c].astype(dtype)  # a CategoricalDtype keeps its categories
        return frame

    # ------------------------------------------------------------- numeric path
    def _validate_array(self, X, reset):
        try:
            # float32 tables are scored without a float64 copy of the whole: each block
            # is widened as it is standardised (exactly), which gives the same values
            return validated(
                self, X, reset=reset, dtype=np.float64 if reset else (np.float64, np.float32),
                ensure_all_finite="allow-nan",
                ensure_min_samples=2 if reset else 1,
            )
        except ValueError as exc:
            if "could not convert" in str(exc):
                raise ValueError(
                    f"X must be numeric: {exc}. To use categorical columns, pass a "
                    "pandas DataFrame whose categorical columns have category, object, "
                    "string or bool dtype"
                ) from exc
            raise

    def _fit_numeric(self, X, names):
        observed = ~np.isnan(X)
        empty = np.flatnonzero(~observed.any(axis=0))
        if len(empty):
            raise ValueError(
                f"column {names[empty[0]]!r} has no observed value in the training data"
            )
        self.levels_ = {}
        for j in range(X.shape[1] if self.levels else 0):
            values = X[observed[:, j], j]
            levels = np.unique(values)
            if 2 * len(levels) <= len(values):
                self.levels_[j] = levels
        self.mean_, scale = column_moments(X)
        self.scale_ = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), scale, 1.0)

    def _encode_numeric(self, X):
        if len(X) > _ENCODE_ROWS:  # element-wise: the same values, block by block
            blocks = [self._encode_numeric(X[start:start + _ENCODE_ROWS])
                      for start in range(0, len(X), _ENCODE_ROWS)]
            Z = np.concatenate([block for block, _ in blocks])
            if all(mask is None for _, mask in blocks):
                return Z, None
            return Z, np.concatenate([np.ones(block.shape, dtype=bool) if mask is None
                                      else mask for block, mask in blocks])
        Z = standardise(X, self.mean_, self.scale_)
        mask = ~np.isnan(Z)
        full = mask.all()
        if not full:
            Z[~mask] = 0.0
        # in place; the clip takes infinities to the bounds as well
        Z = np.clip(Z, -CLIP, CLIP, out=Z).astype(np.float32)
        return Z, (None if full else mask)

    # --------------------------------------------------------------- frame path
    def _fit_frame(self, X):
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"Found array with shape {X.shape}: X must not be empty")
        if X.shape[0] < 2:
            raise ValueError(
                f"Found array with 1 sample(s) (shape={X.shape}) while a minimum of 2 is "
                "required to fit"
            )
        self.check_names(X, reset=True)
        self.check_count(X.shape[1], reset=True)
        self.kind_ = "frame"
        self.columns_ = list(X.columns)
        self.missing_rates_ = X.isna().mean(axis=0).to_numpy(dtype=np.float64)
        self.dtypes_ = dict(X.dtypes)
        self.numeric_ = [c for c in X.columns if not _is_categorical(X[c])]
        self.categories_ = {}
        for c in X.columns:
            if c in self.numeric_:
                continue
            values = X[c].dropna().unique()
            if len(values) == 0:
                raise ValueError(f"column {c!r} has no observed value in the training data")
            try:
                values = sorted(values)
            except TypeError:
                values = sorted(values, key=repr)
            self.categories_[c] = list(values)
        numeric = self._numeric_block(X)
        self._fit_numeric(numeric, [str(c) for c in self.numeric_])
        return self._encode_frame(X, numeric)

    def _numeric_block(self, X):
        block = np.empty((X.shape[0], len(self.numeric_)), dtype=np.float64)
        for j, c in enumerate(self.numeric_):
            try:
                block[:, j] = pd.to_numeric(X[c]).to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"column {c!r} must be numeric: {exc}") from exc
        if np.isinf(block).any():
            j = int(np.flatnonzero(np.isinf(block).any(axis=0))[0])
            raise ValueError(f"Input X contains infinity in column {self.numeric_[j]!r}")
        return block

    def _encode_frame(self, X, numeric):
        Zn, maskn = self._encode_numeric(numeric)
        blocks = [Zn]
        masks = [np.ones_like(Zn, dtype=bool) if maskn is None else maskn]
        for c, cats in self.categories_.items():
            col = X[c]
            # -1 for a category never seen in training, and for a missing entry (pandas
            # deprecates re-categorising a categorical column with values outside the
            # new categories, so look the values up instead)
            codes = pd.Index(cats, dtype=object).get_indexer(col.astype(object))
            onehot = np.full((len(col), len(cats)), -1.0, dtype=np.float32)
            seen = codes >= 0
            onehot[np.flatnonzero(seen), codes[seen]] = 1.0
            missing = col.isna().to_numpy()
            onehot[missing] = 0.0
            blocks.append(onehot)
            masks.append(np.repeat(~missing[:, None], len(cats), axis=1))
        Z = np.concatenate(blocks, axis=1).astype(np.float32)
        mask = np.concatenate(masks, axis=1)
        return Z, (mask if not mask.all() else None)

    def _transform_frame(self, X):
        if X.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                             "minimum of 1 is required")
        if list(X.columns) != self.columns_:
            # columns are matched by name, like a ColumnTransformer selecting by name
            missing = [c for c in self.columns_ if c not in X.columns]
            if missing:
                raise ValueError(f"X is missing the columns seen in fit: {missing}")
            if len(X.columns) == len(self.columns_):
                X = X[self.columns_]
        self.check_names(X, reset=False)
        self.check_count(X.shape[1], reset=False)
        return self._encode_frame(X, self._numeric_block(X))

    def _array_to_frame(self, X):
        X = np.asarray(X, dtype=object) if not hasattr(X, "shape") else X
        if X.ndim != 2 or X.shape[1] != len(self.columns_):
            raise ValueError(
                f"X has {X.shape[-1] if X.ndim else 0} features, but "
                f"{self.owner} is expecting {len(self.columns_)} features "
                "as input."
            )
        warnings.warn(
            f"X does not have valid feature names, but {self.owner} was "
            "fitted with feature names; columns are taken by position",
            UserWarning,
            stacklevel=4,
        )
        return pd.DataFrame(X, columns=self.columns_).astype(
            {c: "float64" for c in self.numeric_}, errors="ignore"
        )
