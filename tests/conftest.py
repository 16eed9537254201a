"""Plugins for every test tree (pytest loads this file; never import it).

`tests.support.costs`: the cost markers (each test carries one; under CI a skipped `node` or
`browser` test fails). `tests.support.signals`: children get Ctrl-C even when the run was
started with SIGINT ignored. `pytester`: for the unit test of the costs plugin.
"""

pytest_plugins = ("tests.support.costs", "tests.support.signals", "pytester")
