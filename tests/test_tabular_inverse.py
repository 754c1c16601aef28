"""Decoding encoded table rows (the way generated rows come back to the user, issue #13)."""

import numpy as np
import pandas as pd
import pytest

from skdiffad._encoders.tabular import TabularEncoder


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(10, 3, n),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n),
                                 categories=["red", "green", "blue", "violet"]),
        "count": rng.integers(0, 50, n),
        "flag": rng.random(n) < 0.3,
        "name": rng.choice(["a", "b"], n).astype(object),
        "label": pd.array(rng.choice(["x", "y", "z"], n), dtype="string"),
    })


def test_frames_come_back_with_their_columns_dtypes_and_values():
    X = _frame()
    encoder = TabularEncoder()
    Z = encoder.fit_transform(X).samples.values
    back = encoder.inverse_transform(Z)
    assert list(back.columns) == list(X.columns)
    assert dict(back.dtypes) == dict(X.dtypes)
    assert np.allclose(back["size"], X["size"], rtol=1e-5)
    pd.testing.assert_frame_equal(back.drop(columns="size"), X.drop(columns="size"))
    assert not back.isna().any().any()


def test_decoded_categories_are_the_largest_code_and_integers_are_rounded():
    X = _frame()
    encoder = TabularEncoder()
    Z = encoder.fit_transform(X).samples.values.copy()
    # colour's codes follow size and count (numeric block first), one per category
    # seen in training, sorted: blue, green, red
    assert encoder.categories_["colour"] == ["blue", "green", "red"]
    Z[0, 2:5] = [0.1, 0.9, -0.3]
    Z[0, 1] = (12.6 - encoder.mean_[1]) / encoder.scale_[1]
    back = encoder.inverse_transform(Z)
    assert back.loc[0, "colour"] == "green" and back.loc[0, "count"] == 13


def test_arrays_come_back_as_float_arrays():
    X = np.random.default_rng(1).normal(5, 2, (30, 3))
    encoder = TabularEncoder()
    Z = encoder.fit_transform(X).samples.values
    back = encoder.inverse_transform(Z)
    assert isinstance(back, np.ndarray) and np.allclose(back, X, rtol=1e-5)


def test_a_wrong_width_is_named():
    encoder = TabularEncoder()
    encoder.fit_transform(_frame())
    with pytest.raises(ValueError, match=r"Z must have shape \(n, 12\), got \(2, 5\)"):
        encoder.inverse_transform(np.zeros((2, 5)))


def test_unseen_and_missing_categories_activate_no_code_without_a_pandas_warning():
    import warnings

    X = _frame()
    encoder = TabularEncoder()
    encoder.fit_transform(X)
    new = X.head(3).copy()
    new["colour"] = pd.Categorical(["violet", None, "red"],
                                   categories=["red", "green", "blue", "violet"])
    new["name"] = np.array(["c", "a", None], dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = encoder.transform(new).samples.values
    assert (Z[0, 2:5] == -1).all()            # unseen: every code off
    assert (Z[1, 2:5] == 0).all()             # missing: neutral (and masked)
    assert Z[2, 2:5].tolist() == [-1, -1, 1]  # red
    start = 2 + 3 + 2                         # name's codes follow colour's and flag's
    assert Z[:, start:start + 2].tolist() == [[-1, -1], [1, -1], [0, 0]]


def test_discrete_columns_decode_onto_their_training_values():
    from skdiffad._encoders import TabularEncoder

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 5, 400) * 0.5,   # 5 levels: discrete
                         rng.normal(size=400),             # continuous
                         np.full(400, 3.0)])               # constant
    encoder = TabularEncoder()
    encoder.fit_transform(X)
    assert set(encoder.levels_) == {0, 2}
    Z = np.array([[0.1, 0.3, 5.0], [-10.0, 0.0, -1.0], [10.0, 1.0, 0.0]])
    decoded = encoder.inverse_transform(Z)
    assert decoded[0, 0] in {0.0, 0.5, 1.0, 1.5, 2.0}
    # beyond the training range a value stays where it is (a generated anomaly)
    assert decoded[1, 0] < 0 and decoded[2, 0] > 2
    # normal samples (clip=True) stay on the training values everywhere
    clipped = encoder.inverse_transform(Z, clip=True)
    assert clipped[:, 0].tolist() == [decoded[0, 0], 0.0, 2.0]
    np.testing.assert_array_equal(clipped[:, 1:], decoded[:, 1:])  # continuous: untouched
    np.testing.assert_allclose(decoded[:, 1], Z[:, 1] * encoder.scale_[1] + encoder.mean_[1])
    np.testing.assert_array_equal(decoded[:, 2], 3.0)
    # a small continuous sample is not taken for a discrete one
    few = TabularEncoder()
    few.fit_transform(rng.normal(size=(15, 2)))
    assert few.levels_ == {}
