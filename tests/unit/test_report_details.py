"""Report details a reader relies on: tolerances, time bases, overlapping milestones, the
partial last second, units, mid-run summaries and the doctor's risks (issue 10, defect 7)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import StepPatch
from PIL import Image

from chaosraysvc.report import chart
from chaosraysvc.report.cli import build
from chaosraysvc.report.figures import RunFigures, run_figures
from chaosraysvc.report.load import load_run
from chaosraysvc.traffic.summary import LikelyCause
from tests.support.report_samples import (
    FIXTURES,
    T0,
    figures_of,
    iso,
    passing_journal,
    real_journal,
    traffic_records,
    write_run,
)

RISK = {
    "id": "head-in-serve-svc",
    "severity": "high",
    "title": "The head pod is in the serve Service",
    "evidence": ["the head's proxy listens on the serve port"],
    "consequence": "requests in flight on the head are lost",
    "fix": "excludeHeadPodFromServeSvc: true",
}


def html_of(folder: Path, journal: dict[str, Any], records: list | None = None) -> str:
    path = write_run(folder, journal, records)
    return build([path], None, folder / "r.html", "html")[0][folder / "r.html"].decode()


def probes(figures: RunFigures) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in figures.to_json()["steady_state"]["probes"]}


# --- the tolerance column ---------------------------------------------------------------


def test_a_placeholder_tolerance_shows_the_value_the_probe_met() -> None:
    """The demo ran with RAYSVC_EXPECTED_ENDPOINTS=2 (default 3): the journal only says
    "${expected_endpoints}", and the probe met it with 2."""
    f = run_figures(load_run(FIXTURES / "demo-pass-journal.json"))
    probe = probes(f)["serve-endpoints-ready"]
    assert probe["tolerance"] == "2" and probe["tolerance_known"] is True
    assert probe["tolerance_written"] == "${expected_endpoints}"
    [note] = probe["tolerance_notes"]
    assert "$RAYSVC_EXPECTED_ENDPOINTS" in note and "inferred" in note and "default is 3" in note


def test_a_tolerance_that_cannot_be_known_says_so(tmp_path: Path) -> None:
    journal = real_journal("demo-pass")
    for state in journal["steady_states"].values():
        for result in state["probes"] if isinstance(state, dict) else []:
            if result["activity"]["name"] == "serve-endpoints-ready":
                result.update(output=1, tolerance_met=False)
    html = html_of(tmp_path, journal)
    probe = probes(figures_of(tmp_path, journal))["serve-endpoints-ready"]
    assert probe["tolerance_known"] is False
    assert (
        "unknown: $RAYSVC_EXPECTED_ENDPOINTS at run time was not recorded"
        in probe["tolerance_notes"][0]
    )
    assert "was not recorded; its default is 3" in html


def test_a_recorded_or_plain_configuration_value_is_used(tmp_path: Path) -> None:
    journal = passing_journal()  # expected_endpoints: 3 in the experiment
    assert probes(figures_of(tmp_path / "a", journal))["serve-endpoints-ready"]["tolerance"] == "3"
    journal["experiment"]["configuration"]["expected_endpoints"] = {
        "type": "env",
        "key": "RAYSVC_EXPECTED_ENDPOINTS",
    }
    journal["extensions"][0]["configuration"] = {"expected_endpoints": 4}
    probe = probes(figures_of(tmp_path / "b", journal))["serve-endpoints-ready"]
    assert probe["tolerance"] == "4" and probe["tolerance_notes"] == [
        "${expected_endpoints}: recorded by the run"
    ]


# --- one time base, or both named -------------------------------------------------------


def test_the_chart_names_both_time_bases_with_the_recovery_table(tmp_path: Path) -> None:
    html = html_of(tmp_path, passing_journal(), traffic_records())
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert "seconds since traffic start" in svg
    assert "seconds since the head pod deletion" in svg
    # the legend gives the milestone on both bases: the table's 5.0 s is the chart's +15.0 s
    assert "new head pod ready (+15.0 s) = deletion + 5.0 s" in svg
    assert "applications RUNNING (+22.0 s) = deletion + 12.0 s" in svg
    table = html[html.index('<section class="recovery">') :]
    assert "since traffic start" in table[: table.index("</thead>")]
    assert "after the deletion" in table[: table.index("</thead>")]


# --- coinciding milestones --------------------------------------------------------------


def _column_colours(figures: dict[str, Any], timeline: list, at: float) -> tuple[int, int]:
    with matplotlib.rc_context(chart.RC):
        fig = chart.timeline_figure(timeline, figures)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    x = round(fig.axes[0].transData.transform((at, 0))[0])
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), bytes(canvas.buffer_rgba())).convert("RGB")
    orange = blue = 0
    for col in range(x - 2, x + 3):
        for y in range(height):
            r, g, b = image.getpixel((col, y))
            orange += r > 200 and 80 < g < 150 and b < 60  # #ef6c00, new pod ready
            blue += r < 60 and 60 < g < 130 and b > 160  # #1565c0, endpoints restored
    return orange, blue


def test_milestones_at_the_same_time_are_both_visible(tmp_path: Path) -> None:
    """In the demo both came 39.577 s after the deletion: one line hid the other."""
    journal = passing_journal()
    records = traffic_records()
    same = T0 + 15.0004
    for r in records:
        if r.get("event") == "endpoints_restored":
            r["t"] = same
    journal["run"][0]["output"]["recovery"]["at"]["endpoints_restored"] = same
    run = load_run(write_run(tmp_path, journal, records))
    orange, blue = _column_colours(run_figures(run), run.summary["timeline"], 15.0)
    assert orange + blue > 300
    assert min(orange, blue) >= 0.35 * (orange + blue), (orange, blue)


# --- the partial last second ------------------------------------------------------------


def test_the_partial_last_second_is_not_drawn_as_a_drop(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, records=traffic_records(duration=40.0)))
    timeline = run.summary["timeline"]
    assert timeline[-1]["second"] == 40 and timeline[-1]["successes"] == 0  # [40, 41): 0 s of it
    figures = run_figures(run)
    with matplotlib.rc_context(chart.RC):
        fig = chart.timeline_figure(timeline, figures)
    bars = [p for p in fig.axes[0].patches if isinstance(p, StepPatch)]
    assert bars, "no request bars drawn"
    for bar in bars:  # successes and failures stop where the traffic stopped
        assert bar.get_data().edges[-1] == 40.0
    labels = fig.legends[0].get_texts()
    assert any("last second: traffic stopped 0.00 s into it" in t.get_text() for t in labels)


# --- units, mid-run summaries -----------------------------------------------------------


def test_probe_values_carry_their_unit() -> None:
    f = run_figures(load_run(FIXTURES / "demo-pass-journal.json")).to_json()
    rows = {a["name"]: a for a in f["activities"]}
    assert rows["outage-latency-p99-ms"]["result"] == "50.4 ms"
    assert rows["traffic-summary"]["result"] == "2,143 requests, 0 failed, p99 59.5 ms"
    assert rows["wait-for-recovery"]["result"] == "healthy after 0.1 s (4 pods, 2 endpoints)"


def test_a_mid_run_traffic_summary_says_why_it_counts_fewer_requests(tmp_path: Path) -> None:
    journal = passing_journal()
    snapshot = {
        "run": {"started": T0, "ended": T0 + 39.5, "complete": False},
        "requests": 790,
        "failures": 50,
        "latency_ms": {"p99": 90.0},
    }
    journal["run"].append(
        {
            "activity": {
                "type": "probe",
                "name": "traffic-summary",
                "provider": {"type": "python", "module": "x", "func": "traffic_summary"},
            },
            "output": snapshot,
            "status": "succeeded",
            "start": iso(39.5),
            "end": iso(39.6),
            "duration": 0.1,
        }
    )
    f = figures_of(tmp_path, journal, traffic_records()).to_json()
    assert f["traffic"]["requests"] == 800
    row = next(a for a in f["activities"] if a["name"] == "traffic-summary")
    assert row["result"] == "790 requests, 50 failed, p99 90.0 ms"
    assert row["note"] == (
        "a snapshot at +39.5 s, taken while the traffic still ran; the report's totals "
        "count all 800 requests to its stop at +40.0 s"
    )
    whole = next(a for a in f["activities"] if a["name"] == "stop-traffic")
    assert whole["note"] == ""  # the stop's summary has no `run`: nothing to compare


# --- how the traffic called the service ------------------------------------------------


def test_the_traffic_line_names_the_method_and_the_accepted_statuses(tmp_path: Path) -> None:
    records = traffic_records()  # a header written before method/expected_status existed
    html = html_of(tmp_path / "old", passing_journal(), records)
    assert "<code>POST /fruit/</code>, accepted status any 2xx" in html
    records[0].update(method="GET", path="/healthz", expected_status=[200, 204])
    html = html_of(tmp_path / "new", passing_journal(), records)
    assert "<code>GET /healthz</code>, accepted status 200, 204" in html
    md = build(
        [write_run(tmp_path / "md", passing_journal(), records)], None, tmp_path / "r.md", "md"
    )
    assert "GET /healthz, accepted status 200, 204 |" in md[0][tmp_path / "r.md"].decode()


# --- the failed requests, one by one ----------------------------------------------------


def test_the_first_failed_requests_are_listed_with_their_request_ids(tmp_path: Path) -> None:
    records = traffic_records()  # 50 failures from +10.0 s (the fault) at 20 req/s
    f = figures_of(tmp_path, passing_journal(), records).to_json()
    listed = f["traffic"]["failed_requests"]
    first = next(r for r in records if r["kind"] == "req" and not r["ok"])
    assert len(listed) == 20 and f["traffic"]["failures"] == 50
    assert listed[0]["id"] == first["id"] == "crs-0a1b2c3d-201"
    assert listed[0]["after_fault_s"] == 0.0 and listed[1]["after_fault_s"] == 0.05
    html = html_of(tmp_path, passing_journal(), records)
    section = html[html.index('<details class="failed">') : html.index("</details>")]
    assert "The first 20 failed requests" in section
    assert '<td class="num">+0.050 s</td>' in section
    assert "<code>crs-0a1b2c3d-202</code>" in section and "crs-0a1b2c3d-221" not in section
    md = build([write_run(tmp_path, passing_journal(), records)], None, tmp_path / "r.md", "md")
    text = md[0][tmp_path / "r.md"].decode()
    assert "| +0.050 s | worker-1 | connect_refused | 1500.0 ms | crs-0a1b2c3d-202 |" in text


def test_a_log_without_request_ids_lists_the_failures_without_one(tmp_path: Path) -> None:
    records = [{k: v for k, v in r.items() if k != "id"} for r in traffic_records()]
    f = figures_of(tmp_path, passing_journal(), records).to_json()
    assert {r["id"] for r in f["traffic"]["failed_requests"]} == {None}
    html = html_of(tmp_path, passing_journal(), records)
    assert "<td><code>—</code></td></tr>" in html


# --- the doctor's risks -----------------------------------------------------------------


def test_a_run_that_did_not_record_the_risks_says_so(tmp_path: Path) -> None:
    html = html_of(tmp_path, passing_journal(), traffic_records())
    assert "HA risks at the time of the run" in html
    assert "Not recorded by this run" in html and "chaosraysvc doctor" in html


def test_risks_from_an_ha_risks_probe_are_shown(tmp_path: Path) -> None:
    journal = passing_journal()
    before = journal["steady_states"]["before"]["probes"]
    probe = copy.deepcopy(before[0])
    probe["activity"].update(name="no-high-ha-risk", tolerance=[[]])
    probe["activity"]["provider"].update(func="ha_risks", arguments={"min_severity": "medium"})
    probe.update(output=[RISK], tolerance_met=False)
    before.append(probe)
    f = figures_of(tmp_path, journal, traffic_records()).to_json()
    [check] = f["risks"]["checks"]
    assert check["min_severity"] == "medium" and check["risks"][0]["id"] == "head-in-serve-svc"
    assert "before the fault" in check["source"]
    html = html_of(tmp_path, journal, traffic_records())
    section = html[html.index('<section class="risks">') : html.index('<section class="timeline">')]
    assert "head-in-serve-svc" in section and "the head&#39;s proxy listens" in section


def test_risks_recorded_by_the_control_are_shown_and_checked_against_causes(
    tmp_path: Path,
) -> None:
    journal = passing_journal()
    journal["extensions"][0]["doctor"] = {"at": T0 - 1, "min_severity": "low", "risks": []}
    records = traffic_records()
    f = figures_of(tmp_path, journal, records)
    assert f.risks.recorded and f.risks.checks[0].risks == []
    assert f.traffic is not None
    cause = LikelyCause.from_json(
        {"pattern": "head-proxy-lost", "evidence": "e", "risk": "head-in-serve-svc"}
    )
    assert cause is not None
    f = replace(f, traffic=replace(f.traffic, likely_causes=[cause]))
    from chaosraysvc.report.render import render_html

    html = render_html([f], [None])
    section = html[html.index('<section class="risks">') :]
    assert "no risk" in section[: section.index("</section>")]
    assert "not among the risks recorded for this run" in html


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_demo_report_shows_no_raw_placeholder_as_a_tolerance(tmp_path: Path, fmt: str) -> None:
    files, _ = build([FIXTURES / "demo-pass-journal.json"], None, tmp_path / f"r.{fmt}", fmt)
    text = files[tmp_path / f"r.{fmt}"].decode()
    if fmt == "md":
        assert "| serve-endpoints-ready | 2 (" in text
    else:
        assert '<td class=""><code>2</code>' in text
