"""Helpers shared by test modules (not fixtures: those live in each tree's conftest.py).

Imported as `tests.support.<module>`; `pythonpath = .` in setup.cfg puts the repository
root on `sys.path` for pytest. Benchmarks do not import these: they are test code.
"""
