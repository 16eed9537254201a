"""The HTML report as a browser shows it: headless Chromium, no network, no script.

Skipped where Chromium is not installed on a developer machine (`apt-get install -y chromium`
enables it); marked `browser`, so under CI (`$CI` set, as `.ci/run` does, which also installs
Chromium) that skip fails the run instead (tests/support/costs.py). docs/report.md has the
manual check.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from chaosraysvc.cli import main
from tests.support.report_samples import traffic_records, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSED_GREEN = (0x1B, 0x5E, 0x20)  # the verdict badge and border of a passed run


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
    ),
]


def screenshot(page: Path, shot: Path, size: str = "1200,2400") -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                f"--window-size={size}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )


def test_the_report_renders_with_its_verdict_colour_and_chart(tmp_path: Path) -> None:
    from PIL import Image  # a matplotlib dependency

    journal = write_run(tmp_path, records=traffic_records())
    assert main(["report", str(journal)]) == 0
    shot = tmp_path / "report.png"
    screenshot(tmp_path / "report.html", shot)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400)
    top = image.crop((0, 0, 1200, 220))
    close = sum(
        n
        for n, colour in top.getcolors(maxcolors=1_000_000) or []
        if all(abs(c - g) <= 12 for c, g in zip(colour, PASSED_GREEN, strict=True))
    )
    assert close > 2_000, "the passed verdict is not drawn in green at the top"
    colours = image.crop((0, 600, 1200, 1300)).getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 200, "the chart area looks empty"
