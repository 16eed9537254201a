"""What a `pip install chaosraysvc` brings besides the code: the experiments and what they use.

`experiments/`, `probes/` and `deploy/` here are symbolic links to the repository's top-level
folders (one copy of each file in the repository); a wheel holds them as plain files (package
data, see setup.cfg). `chaosraysvc experiments export DIR` writes them out, so that::

    pip install chaosraysvc
    chaosraysvc experiments export .
    chaos run experiments/head-kill.json

works without a clone. `chaosraysvc experiments check FILE` says in one line what is wrong
with an experiment before `chaos run` shows a traceback for it.
"""

from __future__ import annotations

FOLDERS = ("experiments", "probes", "deploy")
