"""Faults other than a pod deletion in the report: an upgrade and a GCS kill."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chaosraysvc.report.cli import build
from tests.support.report_samples import passing_journal, traffic_records, write_run

OLD, NEW = "rayservice-ha-x4snq", "rayservice-ha-l7r2s"


def _upgrade_run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    journal = passing_journal()
    result = journal["run"][0]
    delete = result["output"]
    result["activity"]["name"] = "upgrade-rayservice"
    result["activity"]["provider"]["func"] = "upgrade_rayservice"
    result["output"] = {
        "upgraded": {"from_cluster": OLD, "patch": {}, "to_cluster": NEW},
        "patched_at": delete["deleted_at"],
        "dry_run": False,
        "target": "kubernetes",
        "before": delete["before"],
        "recovery": {
            "old_cluster": OLD,
            "new_cluster": NEW,
            "recovered": True,
            "seconds_to": delete["recovery"]["seconds_to"],
            "at": delete["recovery"]["at"],
        },
    }
    records = traffic_records()
    for record in records:
        if record.get("event") == "fault":
            record["detail"] = {
                "role": "rayservice",
                "cluster": OLD,
                "action": "upgrade_rayservice",
            }
    return journal, records


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_upgrade_is_one_fault_naming_both_clusters(tmp_path: Path) -> None:
    journal, records = _upgrade_run()
    path = write_run(tmp_path, journal, records)

    html = build([path], None, tmp_path / "r.html", "html")[0][tmp_path / "r.html"].decode()

    text = _text(html)
    assert f"RayService upgraded from cluster {OLD} by upgrade-rayservice (succeeded)" in text
    assert f"to cluster {NEW}" in text
    assert text.count("RayService upgraded from cluster") == 1  # the mark joined the action
    assert "(no result)" not in text


def test_a_gcs_kill_is_one_fault_on_the_head_restarted_in_place(tmp_path: Path) -> None:
    journal = passing_journal()
    result = journal["run"][0]
    delete = result["output"]
    head = delete["deleted"]["name"]
    result["activity"]["name"] = "kill-gcs-server"
    result["activity"]["provider"]["func"] = "kill_gcs_server"
    result["output"] = {
        "killed": {"pod": head, "role": "head", "process": "gcs_server"},
        "killed_at": delete["deleted_at"],
        "target": "sandbox",
        "before": delete["before"],
        "recovery": {**delete["recovery"], "new_pod": head},
    }
    records = traffic_records(pod=head)
    for record in records:
        if record.get("event") == "fault":
            record["detail"]["action"] = "kill_gcs_server"
    path = write_run(tmp_path, journal, records)

    html = build([path], None, tmp_path / "r.html", "html")[0][tmp_path / "r.html"].decode()

    text = _text(html)
    assert f"head pod {head} by kill-gcs-server (succeeded)" in text
    assert text.count(" by kill") == 1 and "(no result)" not in text


def test_each_kill_of_delete_pods_is_a_fault_of_its_own(tmp_path: Path) -> None:
    journal = passing_journal()
    result = journal["run"][0]
    first = result["output"]
    second = {
        **first,
        "deleted": {"name": "rayservice-ha-worker-b", "role": "worker", "uid": "u-2"},
        "deleted_at": first["deleted_at"] + 1.0,
        "recovery": {**first["recovery"], "new_pod": "rayservice-ha-worker-c"},
    }
    result["activity"]["name"] = "delete-pods"
    result["activity"]["provider"]["func"] = "delete_pods"
    result["output"] = {"role": "head", "count": 2, "repeat": 1, "kills": [first, second]}
    path = write_run(tmp_path, journal, traffic_records())

    html = build([path], None, tmp_path / "r.html", "html")[0][tmp_path / "r.html"].decode()

    text = _text(html)
    assert text.count("by delete-pods (succeeded)") == 2
    assert "worker pod rayservice-ha-worker-b" in text and "rayservice-ha-worker-c" in text
    assert "(no result)" not in text
