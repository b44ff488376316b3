"""Data: the shipped data sets, moons, CSV loading and its errors, splitting, standardizing."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from nn import load_csv, load_digits, load_iris, load_wine, make_moons, standardize, train_test_split


def test_iris() -> None:
    d = load_iris()
    assert (len(d.X), d.n_features, d.class_names) == (150, 4, ["setosa", "versicolor", "virginica"])
    assert d.X[0] == [5.1, 3.5, 1.4, 0.2] and d.y[0] == 0  # first row of Fisher's table
    assert Counter(d.y) == {0: 50, 1: 50, 2: 50}
    assert d.feature_names[0] == "sepal_length_cm"


def test_wine_and_digits() -> None:
    wine = load_wine()
    assert (len(wine.X), wine.n_features) == (178, 13)
    assert Counter(wine.y) == {0: 59, 1: 71, 2: 48}  # the UCI class counts
    assert wine.X[0][-1] == 1065.0  # proline of the first wine
    digits = load_digits()
    assert (len(digits.X), digits.n_features, digits.class_names) == (1797, 64, [str(k) for k in range(10)])
    assert all(0.0 <= v <= 16.0 for row in digits.X for v in row)


def test_moons_lie_on_two_half_circles() -> None:
    d = make_moons(100, noise=0.0, seed=0)
    assert Counter(d.y) == {0: 50, 1: 50}
    for (x, y), label in zip(d.X, d.y):
        if label == 0:  # (cos t, sin t)
            assert math.hypot(x, y) == pytest.approx(1.0, abs=1e-12) and y >= -1e-12
        else:  # (1 - cos t, 0.5 - sin t)
            assert math.hypot(x - 1.0, y - 0.5) == pytest.approx(1.0, abs=1e-12) and y <= 0.5 + 1e-12


def test_moons_are_deterministic_and_noisy() -> None:
    a, b = make_moons(50, 0.1, seed=7), make_moons(50, 0.1, seed=7)
    assert a.X == b.X and a.y == b.y
    assert a.X != make_moons(50, 0.1, seed=8).X
    radii = [math.hypot(x, y) for (x, y), label in zip(a.X, a.y) if label == 0]
    assert max(abs(r - 1.0) for r in radii) > 0.01  # noise moved the points off the circle
    with pytest.raises(ValueError):
        make_moons(1)
    with pytest.raises(ValueError):
        make_moons(10, noise=-1.0)


def write(tmp_path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_load_csv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "a,label,b\n1,cat,2\n3,dog,4.5\n5,cat,6\n")
    d = load_csv(path, target="label")
    assert d.X == [[1.0, 2.0], [3.0, 4.5], [5.0, 6.0]]
    assert d.y == [0, 1, 0] and d.class_names == ["cat", "dog"] and d.feature_names == ["a", "b"]
    numeric = load_csv(write(tmp_path, "x,y\n1,10\n2,9\n3,10\n"), target="y")
    assert numeric.class_names == ["9", "10"] and numeric.y == [1, 0, 1]  # sorted as numbers


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("a,label\n", "no data rows"),
    ("a,b\n1,2\n", "no column 'label'; its columns are a, b"),
    ("a,label\n1,x\nfoo,y\n", r"line 3, column 'a': 'foo' is not a number"),
    ("a,label\n1,x\n2\n", "line 3: 1 fields, expected 2"),
])
def test_load_csv_errors(tmp_path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        load_csv(write(tmp_path, text), target="label")


def test_load_csv_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="no CSV file at"):
        load_csv(tmp_path / "missing.csv", target="label")


def test_train_test_split_is_stratified_and_seeded() -> None:
    d = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(d.X, d.y, 0.3, seed=1)
    assert Counter(y_test) == {0: 15, 1: 15, 2: 15}  # 30% of 50 in each class
    assert Counter(y_train) == {0: 35, 1: 35, 2: 35}
    assert sorted(map(tuple, X_train + X_test)) == sorted(map(tuple, d.X))  # a partition
    assert train_test_split(d.X, d.y, 0.3, seed=1)[1] == X_test
    assert train_test_split(d.X, d.y, 0.3, seed=2)[1] != X_test
    with pytest.raises(ValueError):
        train_test_split(d.X, d.y, 1.5)
    with pytest.raises(ValueError):
        train_test_split(d.X, d.y[:-1])


def test_standardize_fits_on_the_training_split_only() -> None:
    train, test, scaler = standardize([[0.0, 5.0], [2.0, 5.0]], [[4.0, 6.0]])
    # column 1: mean 1, population std 1; column 2 is constant: std taken as 1
    assert (scaler.mean, scaler.std) == ([1.0, 5.0], [1.0, 1.0])
    assert train == [[-1.0, 0.0], [1.0, 0.0]] and test == [[3.0, 1.0]]


def test_numeric_labels_are_classes_by_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = load_csv(write(tmp_path, "x,y\n1,1\n2,1.0\n3,01\n4,2\n"), target="y")
    assert d.class_names == ["1", "2"] and d.y == [0, 0, 0, 1]


def test_standardize_rejects_what_it_cannot_scale() -> None:
    with pytest.raises(ValueError, match="feature 0 has values too large"):
        standardize([[1e200], [-1e200]], [[0.0]])  # the squares overflow
    with pytest.raises(ValueError, match="same number of features"):
        standardize([[1.0, 2.0], [3.0]], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="finite number >= 0"):
        make_moons(10, noise=math.inf)
