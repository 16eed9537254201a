"""The e2e subsets select what they name, as Ginkgo (Go's regexp, its own matching) reads them:
`e2e.test --ginkgo.dry-run` with each subset's focus and skip. A focus anchored with "^" once
selected nothing: Python's `re` had agreed with it (tests/unit/test_e2etests.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc_lab import binaries, e2etests

pytestmark = pytest.mark.apiserver  # needs the Go builds (`make e2e`), not root


def _selected(focus: str, skip: str, tmp_path: Path) -> list[str]:
    try:
        e2e = binaries.e2e_dir(build=False)
    except ChaosRaySvcError as exc:
        pytest.skip(f"e2e.test not built (make e2e): {exc}")
    report = tmp_path / "dry.json"
    subprocess.run(
        [str(e2e / "e2e.test"), "--ginkgo.dry-run", f"--ginkgo.focus={focus}",
         f"--ginkgo.skip={skip}", f"--ginkgo.json-report={report}"],
        capture_output=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    rows = e2etests.rows(json.loads(report.read_text()))
    return sorted(e2etests.plain(r.name) for r in rows if r.state != "skipped")


def test_the_fast_subset_selects_exactly_its_five_tests(tmp_path: Path) -> None:
    assert _selected(*e2etests.SUBSETS["fast"], tmp_path) == sorted(e2etests.FAST)


def test_the_node_network_subset_selects_the_documented_242_tests(tmp_path: Path) -> None:
    names = _selected(*e2etests.SUBSETS["node-network"], tmp_path)

    assert len(names) == 242  # docs/conformance.md, "The subset"
    assert not [n for n in names if "[Serial]" in n or "[Disruptive]" in n]
