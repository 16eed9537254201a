"""Plugins for every test tree (pytest loads this file; never import it).

`tests.support.costs`: the cost markers (each test carries one; under CI a skipped `node` or
`browser` test fails). `pytester`: for the unit test of that plugin.
"""

pytest_plugins = ("tests.support.costs", "pytester")
