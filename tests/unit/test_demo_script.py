"""`make demo` (scripts/demo.sh) keeps a run directory only for a run that happened, prints the
report's path last when there is one, and stops on a mistyped setting before the sandbox.

The script runs as written with `BIN` pointing at stand-ins for `chaosraysvc` and `chaos` that
record their calls (no sandbox is started).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHAOSRAYSVC = """#!/usr/bin/env bash
echo "chaosraysvc $*" >> "$STUB_CALLS"
if [ "$1 $2" = "experiments check" ] && [ -n "${STUB_BAD_SETTING:-}" ]; then
    echo "chaosraysvc: error: $3: \\$RAYSVC_EXPECTED_ENDPOINTS is 'two', not a whole number" >&2
    exit 1
fi
if [ "$1" = report ]; then
    while [ $# -gt 0 ]; do [ "$1" = -o ] && echo "<html>" > "$2"; shift; done
fi
exit 0
"""

CHAOS = """#!/usr/bin/env bash
echo "chaos $*" >> "$STUB_CALLS"
while [ $# -gt 0 ]; do
    case "$1" in --log-file) log=$2; shift;; --journal-path) journal=$2; shift;; esac; shift
done
echo "[INFO] Validating the experiment's syntax" > "$log"
if [ -n "${STUB_RUNS:-}" ]; then echo '{}' > "$journal"; exit 1; fi
echo "json.decoder.JSONDecodeError: Expecting value: line 3 column 1 (char 20)" >&2
exit 1
"""


def demo(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("chaosraysvc", CHAOSRAYSVC), ("chaos", CHAOS)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    run_dir, calls = tmp_path / "runs" / "20260101-000000", tmp_path / "calls"
    done = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env={
            **os.environ,
            "BIN": str(bin_dir),
            "RUN_DIR": str(run_dir),
            "SANDBOX_DIR": str(tmp_path / "sandbox"),
            "STUB_CALLS": str(calls),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    recorded = calls.read_text().splitlines() if calls.exists() else []
    return done, run_dir, recorded


def test_a_run_that_failed_before_starting_leaves_no_run_directory(tmp_path: Path) -> None:
    done, run_dir, calls = demo(tmp_path)

    assert done.returncode == 1
    assert not run_dir.exists()
    assert "report:" not in done.stdout
    assert done.stderr.splitlines()[-1] == (
        "no run recorded: chaos run failed before it started (exit code 1)"
    )
    assert calls[-1].startswith("chaosraysvc sandbox down")  # still brought down


def test_a_run_ends_by_printing_the_report_s_path(tmp_path: Path) -> None:
    done, run_dir, _ = demo(tmp_path, STUB_RUNS="1")

    assert done.returncode == 1  # the experiment deviated: chaos' exit code
    assert done.stdout.splitlines()[-1] == f"report: {run_dir}/report.html"
    assert (run_dir / "report.html").is_file()


def test_a_mistyped_setting_stops_before_the_sandbox_starts(tmp_path: Path) -> None:
    done, run_dir, calls = demo(tmp_path, STUB_BAD_SETTING="1")

    assert done.returncode == 1
    assert calls == ["chaosraysvc experiments check experiments/head-kill.json"]
    assert done.stderr.count("\n") == 1 and "RAYSVC_EXPECTED_ENDPOINTS" in done.stderr
    assert not run_dir.exists()
