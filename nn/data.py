"""Data as plain lists of floats: toy and real data sets, CSV loading, splitting, scaling.

``X`` is a list of samples, each a list of float features; ``y`` a list of ``int`` class
indices (``0 … n_classes-1``). The real data sets ship inside the package (see
``nn/datasets/PROVENANCE.md``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nn.progress import progress_bar, watched


@dataclass
class Dataset:
    """A classification data set.

    Attributes:
        X: ``n_samples`` lists of ``n_features`` floats.
        y: ``n_samples`` class indices in ``0 … len(class_names)-1``.
        feature_names: one name per feature (units in the name where known, e.g. ``_cm``).
        class_names: the class label behind each index.
        name: where it came from.
    """

    X: list[list[float]]
    y: list[int]
    feature_names: list[str]
    class_names: list[str]
    name: str = ""
    description: str = field(default="", repr=False)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def make_moons(n_samples: int = 100, noise: float = 0.0, seed: int | None = 0) -> Dataset:
    """Two interleaving half circles, the two-moons toy problem (class 0: the upper moon).

    Points are spread evenly along each moon, as scikit-learn's ``make_moons``:
    the upper moon is ``(cos t, sin t)``, the lower ``(1 − cos t, 0.5 − sin t)`` for ``t`` in
    ``[0, π]``, then Gaussian noise with standard deviation ``noise`` is added to each
    coordinate and the samples are shuffled. Our own code with Python's ``random``: the same
    ``seed`` gives the same points on every machine (not the same as scikit-learn's).

    Raises:
        ValueError: ``n_samples < 2`` or ``noise < 0``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be a whole number >= 2, got {n_samples!r}")
    if not 0.0 <= noise < math.inf:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = random.Random(seed)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    points: list[tuple[list[float], int]] = []
    for i in range(n_upper):
        t = math.pi * i / max(n_upper - 1, 1)
        points.append(([math.cos(t), math.sin(t)], 0))
    for i in range(n_lower):
        t = math.pi * i / max(n_lower - 1, 1)
        points.append(([1.0 - math.cos(t), 0.5 - math.sin(t)], 1))
    rng.shuffle(points)
    X = [[x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise)] for (x, y), _ in points] if noise \
        else [xy for xy, _ in points]
    return Dataset(X, [label for _, label in points], ["x1", "x2"], ["upper", "lower"], "moons")


def _shipped(filename: str, name: str) -> Dataset:
    text = resources.files("nn").joinpath("datasets").joinpath(filename).read_text(encoding="utf-8")
    return _parse_csv(io.StringIO(text), target=None, source=f"{name} ({filename})", name=name)


def load_iris() -> Dataset:
    """Fisher's iris: 150 flowers, 4 measurements in cm, 3 species (UCI, CC BY 4.0)."""
    return _shipped("iris.csv", "iris")


def load_wine() -> Dataset:
    """Wine: 178 wines, 13 chemical measurements on very different scales (standardize),
    3 cultivars (Forina et al.; UCI, CC BY 4.0)."""
    return _shipped("wine.csv", "wine")


def load_digits() -> Dataset:
    """Handwritten digits: 1797 images of 8×8 pixel counts (0–16), digits 0–9
    (Alpaydin and Kaynak, 1998; UCI, CC BY 4.0)."""
    return _shipped("digits.csv", "digits")


def load_csv(path: str | os.PathLike[str], target: str, progress: bool = False) -> Dataset:
    """Load a classification data set from a CSV file with a header row.

    Args:
        path: the file, UTF-8 text (a byte order mark is skipped). target: the name of the
            label column; every other column is a numeric feature. progress: show a bar of the
            lines read (on a terminal, with tqdm installed; see :func:`nn.progress.progress_bar`).

    Returns:
        A :class:`Dataset`; class names are the distinct labels, sorted (numerically when
        they are all numbers).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an empty file, no such column (the columns are listed) or two of that
            name, a row of the wrong length, an empty label, a feature that is not a number,
            text that is not UTF-8, or a field longer than ``csv.field_size_limit()`` (the
            file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    show = progress and watched()
    with path.open(newline="", encoding="utf-8-sig") as f:
        lines = progress_bar(f, show, total=_count_lines(path) if show else None, unit=" lines",
                             desc=f"reading {path.name}", leave=False, delay=0.5)
        try:
            return _parse_csv(lines, target=target, source=str(path), name=path.stem)
        except UnicodeDecodeError:
            raise ValueError(_not_utf8(path)) from None
        finally:
            getattr(lines, "close", lambda: None)()  # the bar disappears, even on an error


def _count_lines(path: Path) -> int:
    """The number of lines in the file (the bar's total), counted in 1 MiB chunks."""
    count, last = 0, b"\n"
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            count, last = count + chunk.count(b"\n"), chunk[-1:]
    return count + (last != b"\n")  # a last line without a newline


def _not_utf8(path: Path) -> str:
    """Where a file stops being UTF-8 (the decoder reads in chunks, so its position is not the
    file's: decode it all again to find the line)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")  # (not utf-8-sig, whose positions start after a byte order mark)
        return f"{path} is not UTF-8 text"
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return f"{path}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8"


def _parse_csv(lines: Iterable[str], target: str | None, source: str, name: str) -> Dataset:
    reader = csv.reader(lines)
    try:
        return _read_rows(reader, target, source, name)
    except csv.Error as e:
        if "field limit" in str(e):
            raise ValueError(f"{source}, line {reader.line_num}: a field is longer than "
                             f"{csv.field_size_limit()} characters, the csv module's limit (is it a "
                             f"CSV file, with commas between fields?)") from None
        raise ValueError(f"{source}, line {reader.line_num}: not valid CSV ({e})") from None


def _read_rows(reader: Any, target: str | None, source: str, name: str) -> Dataset:
    rows = (row for row in reader if any(cell.strip() for cell in row))
    header = [h.strip() for h in next(rows, [])]
    if not header:
        raise ValueError(f"{source} is empty: expected a header row and data rows")
    if target is None:
        target_col = len(header) - 1
    elif header.count(target) > 1:
        raise ValueError(f"{source} has {header.count(target)} columns named {target!r}; the target "
                         f"must be one column")
    elif target in header:
        target_col = header.index(target)
    else:
        raise ValueError(f"{source} has no column {target!r}; its columns are {', '.join(header)}")
    if len(header) < 2:
        raise ValueError(f"{source} needs at least one feature column besides the target")
    named = [h for h in header if h]
    if len(named) < len(header) or len(set(named)) < len(named):
        which = "an empty name" if len(named) < len(header) else \
            f"two columns named {next(h for h in named if named.count(h) > 1)!r}"
        raise ValueError(f"{source}: the header has {which}; every column needs a name of its own")
    feature_cols = [i for i in range(len(header)) if i != target_col]
    X: list[list[float]] = []
    labels: list[str] = []
    for row in rows:
        line = reader.line_num  # the file's line (blank lines skipped, quoted newlines counted)
        if len(row) != len(header):
            raise ValueError(f"{source}, line {line}: {len(row)} fields, expected {len(header)}")
        features = []
        for i in feature_cols:
            try:
                if "_" in row[i]:  # (Python's float() reads 1_000 as 1000: a CSV does not mean that)
                    raise ValueError
                value = float(row[i])
            except ValueError:
                raise ValueError(f"{source}, line {line}, column {header[i]!r}: {row[i]!r} is not a "
                                 f"number (every column except the target must be numeric)") from None
            if not math.isfinite(value):
                raise ValueError(f"{source}, line {line}, column {header[i]!r}: {row[i]!r} is not finite")
            features.append(value)
        label = row[target_col].strip()
        if not label:
            raise ValueError(f"{source}, line {line}, column {header[target_col]!r}: the label is empty")
        X.append(features)
        labels.append(label)
    if not X:
        raise ValueError(f"{source} has a header but no data rows")
    labels = _canonical_labels(labels)
    class_names = _sorted_labels(set(labels))
    index = {c: i for i, c in enumerate(class_names)}
    return Dataset(X, [index[c] for c in labels], [header[i] for i in feature_cols], class_names, name)


def _canonical_labels(labels: list[str]) -> list[str]:
    """Numeric labels by value, so ``1``, ``1.0`` and ``01`` are one class, named ``1``."""
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return labels
    return [str(int(v)) if v.is_integer() else repr(v) for v in values]


def _sorted_labels(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


Split = tuple[list[list[float]], list[list[float]], list[int], list[int]]


def train_test_split(X: list[list[float]], y: list[int], test_size: float = 0.3,
                     seed: int | None = 0) -> Split:
    """Split into train and test sets, stratified: each class keeps its share in both.

    For each class, its samples are shuffled with ``random.Random(seed)`` and
    ``round(test_size · count)`` of them go to the test set; the rest to training.

    Returns:
        ``(X_train, X_test, y_train, y_test)``, as scikit-learn's ``train_test_split``.

    Raises:
        ValueError: ``X`` and ``y`` of different lengths, or ``test_size`` not in (0, 1).
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size!r}")
    rng = random.Random(seed)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for c in sorted(set(y)):
        members = [i for i, label in enumerate(y) if label == c]
        rng.shuffle(members)
        n_test = round(test_size * len(members))
        test_idx += members[:n_test]
        train_idx += members[n_test:]
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return ([X[i] for i in train_idx], [X[i] for i in test_idx],
            [y[i] for i in train_idx], [y[i] for i in test_idx])


@dataclass
class Standardizer:
    """``(x − mean) / std`` per feature, with mean and (population) std fitted on one set.

    A feature that is constant in the fitting set gets std 1, so it maps to 0, not to nan.
    """

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, X: list[list[float]]) -> Standardizer:
        """Fit the per-feature mean and standard deviation of ``X``.

        Raises ``ValueError`` for an empty or ragged ``X``, or features too large to sum or
        square (near the float limit, ~1.8e308)."""
        if not X:
            raise ValueError("cannot fit a standardizer on no samples")
        n, width = len(X), len(X[0])
        if any(len(row) != width for row in X):
            raise ValueError(f"every sample needs the same number of features ({width}, as the first)")
        mean, std = [], []
        for j, col in enumerate(zip(*X)):
            try:
                m = math.fsum(col) / n
                s = math.sqrt(math.fsum((v - m) * (v - m) for v in col) / n)
            except OverflowError:  # fsum's exact partial sum passed the float limit
                m = s = math.inf
            if not (math.isfinite(m) and math.isfinite(s)):
                raise ValueError(f"feature {j} has values too large to standardize (mean {m}, std {s}); "
                                 f"rescale it first (e.g. other units)")
            mean.append(m)
            std.append(s)
        return cls(mean, [s if s > 0.0 else 1.0 for s in std])

    def transform(self, X: list[list[float]]) -> list[list[float]]:
        """Scale ``X`` with the fitted statistics.

        Raises ``ValueError`` on a width mismatch, or a value so far from the fitted mean
        (in standard deviations) that its scaled value is not finite."""
        for row in X:
            if len(row) != len(self.mean):
                raise ValueError(f"expected {len(self.mean)} features, got {len(row)}")
        scaled = [[(v - m) / s for v, m, s in zip(row, self.mean, self.std)] for row in X]
        bad = next(((k, j) for k, row in enumerate(scaled) for j, v in enumerate(row)
                    if not math.isfinite(v)), None)
        if bad is not None:
            k, j = bad
            raise ValueError(f"sample {k}, feature {j}: {X[k][j]!r} is too far from the fitted mean "
                             f"{self.mean[j]!r} (std {self.std[j]!r}) to standardize")
        return scaled


def standardize(X_train: list[list[float]], X_test: list[list[float]]
                ) -> tuple[list[list[float]], list[list[float]], Standardizer]:
    """Standardize both sets with statistics fitted on the training split only (so nothing
    about the test set leaks into training). Returns ``(X_train, X_test, standardizer)``."""
    scaler = Standardizer.fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), scaler
