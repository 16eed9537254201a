"""The CronJob runs `chaos` with its settings file: the metrics control and what configures it."""

from __future__ import annotations

import importlib
import re

from chaoslib.control import get_global_controls, load_global_controls, reset_global_controls

from chaosraysvc.config import SETTINGS
from tests.support.deploy import CRONJOB, cronjob_objects, cronjob_settings


def test_the_cronjob_passes_its_mounted_settings_file_to_chaos() -> None:
    objects = cronjob_objects()
    pod = objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    script = "\n".join(container["args"])
    [path] = re.findall(r"--settings (\S+)", script)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    folder, _, key = path.rpartition("/")
    [name] = [n for n, p in mounts.items() if p == folder]
    assert volumes[name]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert key in objects["ConfigMap"]["data"]
    assert script.index("--settings") < script.index(" run ")  # a global option of chaos


def test_the_settings_load_the_metrics_control_as_chaos_does() -> None:
    settings = cronjob_settings()
    try:
        load_global_controls(settings)
        [control] = get_global_controls()
    finally:
        reset_global_controls()
    module = importlib.import_module(control["provider"]["module"])
    assert control["name"] == "metrics" and module.__name__ == "chaosraysvc.controls.metrics"
    assert callable(module.configure_control) and callable(module.after_experiment_control)


def test_the_environment_variables_shown_are_those_the_control_reads() -> None:
    shown = set(re.findall(r"name: (RAYSVC_METRICS_\w+)", CRONJOB.read_text()))
    read = {s.env for s in SETTINGS if s.group == "metrics"}
    assert shown and shown <= read


def test_the_settings_post_failed_and_deviated_runs_over_http() -> None:
    [channel] = cronjob_settings()["notifications"]
    assert channel["type"] == "http" and channel["url"].startswith("http")
    assert sorted(channel["events"]) == ["run-deviated", "run-failed"]
    assert channel.get("forward_event_payload", True)  # POST the journal, not a bare GET
