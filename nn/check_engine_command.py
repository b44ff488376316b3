"""``valuegrad check-engine PATH[:CLASS]``: check your own micrograd-style ``Value`` class.

Loading the file runs its code, as ``python PATH`` would (but not its ``if __name__ ==
"__main__":`` block). Exit status 0 when nothing is wrong, 1 when something is, 2 for bad input
(no such file or class, a file that does not import, a class that cannot make a leaf).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = ("Load PATH (a Python file: this RUNS ITS CODE, as python PATH would, without its "
               "__main__ block) and check the class CLASS (default Value), a micrograd-style Value, "
               "against valuegrad's engine: which ops it supports; random expressions and DAGs "
               "compared gradient by gradient; a mismatch shrunk to the smallest expression and "
               "blamed on the method at fault. Exit status 0 when nothing is wrong, 1 when "
               "something is, 2 for bad input.")


def add_parser(commands: Any, parser_class: type, positive_int: Any) -> None:
    own = commands.add_parser("check-engine", help="check your own micrograd-style Value class",
                              description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    own.add_argument("target", metavar="PATH[:CLASS]", help="e.g. my_engine.py or my_engine.py:Value")
    own.add_argument("--examples", type=positive_int, default=300,
                     help="random expressions and DAGs to try when nothing fails (the lecture's classic "
                          "cases come first; shrinking a failure tries more)")
    own.add_argument("--seed", type=int, default=0, help="the search's seed")


def load_class(target: str) -> type:
    """The class ``CLASS`` of the Python file ``PATH`` in ``PATH[:CLASS]``.

    Raises:
        ValueError: no such file, a file that does not import, or no such class.
    """
    path_text, name = target, "Value"
    match = re.fullmatch(r"(.+):([A-Za-z_][A-Za-z0-9_]*)", target)
    if match and not Path(target).exists():
        path_text, name = match.group(1), match.group(2)
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"no such file: {path_text}")
    spec = importlib.util.spec_from_file_location(f"_valuegrad_learner_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path_text} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(path.resolve().parent))  # as python PATH: its folder's modules import
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        raise ValueError(f"{path_text} does not import: {type(error).__name__}: {error}"[:300]) from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    found = getattr(module, name, None)
    if not isinstance(found, type):
        classes = sorted(k for k, v in vars(module).items() if isinstance(v, type))
        raise ValueError(f"{path_text} has no class {name!r}"
                         + (f"; its classes: {', '.join(classes)} (say PATH:CLASS)" if classes else ""))
    return found


def run(args: argparse.Namespace) -> tuple[int, str]:
    """``(exit status, report)``. Raises ``ValueError`` for bad input (exit status 2)."""
    try:
        from engine.testing import check_engine
    except ImportError as error:
        raise ValueError(f"check-engine needs hypothesis: pip install 'valuegrad[test]' ({error})") from None
    value_class = load_class(args.target)
    try:
        report = check_engine(value_class, max_examples=args.examples, seed=args.seed)
    except TypeError as error:
        raise ValueError(str(error)) from None
    return (0 if report.ok else 1), str(report)
