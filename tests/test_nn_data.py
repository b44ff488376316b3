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


def train_csv(path, capsys, *more: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """``valuegrad train --csv path``: the exit status and stderr."""
    from nn.cli import main

    status = main(["train", "--csv", str(path), "--target", "label", "--epochs", "1", "--no-progress",
                   "--out", str(path.parent / "out"), *more])
    return status, capsys.readouterr().err


def one_line_error(status: int, err: str) -> str:
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_values_near_the_float_limit_get_the_clear_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # 1e308 + 1e308 passes the float limit (~1.8e308): math.fsum raised OverflowError
    with pytest.raises(ValueError, match="feature 0 has values too large to standardize"):
        standardize([[1e308], [1e308]], [[0.0]])
    # a test value 1e308 from a training mean 0 with std 1e-3 would scale to inf
    with pytest.raises(ValueError, match=r"sample 0, feature 0: 1e\+308 is too far"):
        standardize([[0.001], [-0.001]], [[1e308]])
    path = write(tmp_path, "a,label\n" + "".join(f"1e308,{k % 2}\n" for k in range(10)))
    err = one_line_error(*train_csv(path, capsys))
    assert "feature 0 has values too large to standardize" in err


def test_a_field_longer_than_the_csv_limit_names_file_and_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import csv

    limit = csv.field_size_limit()
    path = write(tmp_path, f"a,label\n1,x\n{'9' * (limit + 1)},y\n2,x\n")
    with pytest.raises(ValueError, match=rf"data.csv, line 3: a field is longer than {limit} characters"):
        load_csv(path, target="label")
    err = one_line_error(*train_csv(path, capsys))
    assert f"{path}, line 3: a field is longer than" in err


def test_an_empty_label_is_an_error_naming_its_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "a,label\n1,x\n2, \n3,y\n4,x\n5,y\n")
    with pytest.raises(ValueError, match=r"data.csv, line 3, column 'label': the label is empty"):
        load_csv(path, target="label")  # it was a third class, named ''
    one_line_error(*train_csv(path, capsys))


def test_a_duplicate_target_column_is_an_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "label,a,label\n0,1,5\n1,2,6\n0,3,5\n1,4,6\n")
    with pytest.raises(ValueError, match="data.csv has 2 columns named 'label'"):
        load_csv(path, target="label")  # the first was the target, the second a feature
    one_line_error(*train_csv(path, capsys))


def test_a_byte_order_mark_is_accepted(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbflabel,a\nx,1\ny,2\n")  # as Excel writes "CSV UTF-8"
    d = load_csv(path, target="label")
    assert d.feature_names == ["a"] and d.X == [[1.0], [2.0]] and d.class_names == ["x", "y"]


def test_text_that_is_not_utf8_is_an_error_naming_the_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    path.write_bytes("a,label\n1,x\n2,caf\xe9\n".encode("latin-1"))  # é is byte 0xe9 in Latin-1
    with pytest.raises(ValueError, match=r"data.csv, line 3: not UTF-8 text \(byte 0xe9\)"):
        load_csv(path, target="label")
    err = one_line_error(*train_csv(path, capsys))
    assert str(path) in err
    path.write_bytes(b"\xef\xbb\xbf" + "a,label\n1,caf\xe9\n".encode("latin-1"))  # line 2 after a BOM
    with pytest.raises(ValueError, match=r"data.csv, line 2: not UTF-8 text \(byte 0xe9\)"):
        load_csv(path, target="label")


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_model(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    from nn.cli import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "iris", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    before = (out / "model.json").read_bytes()
    capsys.readouterr()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("engine.atomic.os.fsync", full)
    status = main(["train", "--resume", "--epochs", "2", "--no-progress", "--out", str(out)])
    err = one_line_error(status, capsys.readouterr().err)
    assert "No space left on device" in err and "keeps epoch 1" in err
    assert (out / "model.json").read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.json", "training.png"]


class FakeTqdm:
    """Stands in for ``tqdm.auto.tqdm``: records its options and what went through it."""

    made: list[FakeTqdm] = []

    def __init__(self, iterable, **options) -> None:  # type: ignore[no-untyped-def]
        self.iterable, self.options, self.seen, self.closed = iterable, options, 0, False
        FakeTqdm.made.append(self)

    def __iter__(self):  # type: ignore[no-untyped-def]
        for item in self.iterable:
            self.seen += 1
            yield item

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def terminal(monkeypatch):  # type: ignore[no-untyped-def]
    """stderr is a terminal and tqdm is the fake."""
    import sys
    import types

    FakeTqdm.made = []
    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeTqdm))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    return FakeTqdm.made


def test_loading_a_csv_shows_progress_on_a_terminal(tmp_path, terminal) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "a,label\n" + "".join(f"{k},{k % 2}\n" for k in range(1000)))
    assert len(load_csv(path, target="label").X) == 1000  # progress is off unless asked
    assert terminal == []
    assert len(load_csv(path, target="label", progress=True).X) == 1000
    (bar,) = terminal
    assert bar.options["total"] == 1001 and bar.seen == 1001 and bar.closed  # every line, then closed
    from nn.cli import main

    main(["train", "--csv", str(path), "--target", "label", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert terminal[1].options["desc"] == "reading data.csv"  # valuegrad train shows it too


def test_a_full_disk_while_plotting_is_a_clear_error(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    from nn.cli import main

    pytest.importorskip("matplotlib")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nn.plots._save", full)
    status = main(["train", "--dataset", "iris", "--epochs", "1", "--no-progress", "--out", str(tmp_path)])
    err = one_line_error(status, capsys.readouterr().err)
    assert "cannot write the plots" in err and "No space left on device" in err


def test_progress_bar_only_on_a_terminal_with_tqdm(terminal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from nn.progress import progress_bar

    steps = range(5)
    bar = progress_bar(steps, True, unit="step", leave=False)
    assert isinstance(bar, FakeTqdm) and bar.options["unit"] == "step" and list(bar) == [0, 1, 2, 3, 4]
    assert progress_bar(steps, False) is steps
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert progress_bar(steps, True) is steps  # a log file gets no bar frames


@pytest.mark.parametrize("text, message", [
    ("x,x,label\n1,2,a\n3,4,b\n", "two columns named 'x'"),
    ("x1,,label\n1,2,a\n3,4,b\n", "an empty name"),
    ("x,label\n0_17919648727485687,a\n3,b\n", "'0_17919648727485687' is not a number"),
])
def test_csv_headers_need_distinct_names_and_numbers_have_no_underscores(tmp_path, text: str,  # type: ignore[no-untyped-def]
                                                                         message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_csv(path, target="label")
