"""The benchmark of ``make bench``: ``python benchmarks/bench.py`` (see its docstring).

Not an installed package: ``bench.py`` and the tests put the repository root on ``sys.path`` and
import the modules as ``benchmarks.<module>``.
"""
