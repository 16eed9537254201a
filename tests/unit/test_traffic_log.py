"""Reading traffic logs: the format contract, cut-off lines, empty files and garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosraysvc.errors import ChaosRaySvcError
from chaosraysvc.traffic.log import (
    TrafficLogError,
    end_line,
    mark_line,
    read_traffic_log,
    run_line,
)

HEADER = {
    "started": 100.0,
    "url": "http://127.0.0.1:8000",
    "path": "/fruit/",
    "mode": "sequential",
    "rate": 0,
    "concurrency": 1,
    "timeout_s": 2.0,
    "endpoints": [],
}
REQ_OK = '{"kind":"req","t":100.5,"ms":9.731,"ok":true,"code":200,"err":null,"ep":null}\n'
REQ_FAIL = (
    '{"kind":"req","t":100.2,"ms":1.5,"ok":false,"code":null,"err":"connect_refused","ep":"w1"}\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "journal-traffic.jsonl"
    path.write_text(text)
    return path


def test_reads_a_complete_log_sorted_by_time(tmp_path: Path) -> None:
    text = (
        run_line(HEADER)
        + REQ_OK
        + REQ_FAIL
        + mark_line(100.3, "fault", {"pod": "h", "role": "head"})
        + end_line(101.0, 2, 1)
    )
    log = read_traffic_log(write(tmp_path, text))
    assert log.header["version"] == 1 and log.header["mode"] == "sequential"
    assert [r["t"] for r in log.requests] == [100.2, 100.5]
    assert log.requests[0]["err"] == "connect_refused" and log.requests[0]["ep"] == "w1"
    assert log.marks == [
        {"kind": "mark", "t": 100.3, "event": "fault", "detail": {"pod": "h", "role": "head"}}
    ]
    assert log.end == {"kind": "end", "t": 101.0, "requests": 2, "failures": 1}
    assert log.truncated is False


def test_a_line_cut_mid_write_is_dropped_and_flagged(tmp_path: Path) -> None:
    log = read_traffic_log(write(tmp_path, run_line(HEADER) + REQ_OK + REQ_FAIL[:30]))
    assert log.truncated is True
    assert len(log.requests) == 1 and log.end is None


def test_an_empty_file_is_an_empty_log(tmp_path: Path) -> None:
    log = read_traffic_log(write(tmp_path, ""))
    assert log.header == {} and log.requests == [] and log.end is None


def test_a_header_cut_mid_write_is_an_empty_truncated_log(tmp_path: Path) -> None:
    log = read_traffic_log(write(tmp_path, run_line(HEADER)[:20]))
    assert log.header == {} and log.truncated is True


def test_garbage_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, run_line(HEADER) + REQ_OK + "this is not json\n" + REQ_OK)
    with pytest.raises(TrafficLogError) as err:
        read_traffic_log(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)
    assert isinstance(err.value, ChaosRaySvcError)


@pytest.mark.parametrize(
    "line, what",
    [
        ("[1, 2]\n", "not a record"),
        ('{"kind":"req","ms":1}\n', "without 't'"),
        ('{"kind":"mark","t":1}\n', "without 't' or 'event'"),
    ],
)
def test_records_of_the_wrong_shape_are_garbage(tmp_path: Path, line: str, what: str) -> None:
    with pytest.raises(TrafficLogError, match=what):
        read_traffic_log(write(tmp_path, run_line(HEADER) + line + REQ_OK))


def test_a_log_without_header_or_of_another_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrafficLogError, match="no 'run' header"):
        read_traffic_log(write(tmp_path, REQ_OK))
    with pytest.raises(TrafficLogError, match="version 2"):
        read_traffic_log(write(tmp_path, run_line(HEADER).replace('"version":1', '"version":2')))


def test_unknown_kinds_and_fields_are_tolerated(tmp_path: Path) -> None:
    text = run_line(HEADER) + '{"kind":"future","x":1}\n' + REQ_OK.replace("}\n", ',"new":1}\n')
    log = read_traffic_log(write(tmp_path, text))
    assert len(log.requests) == 1 and log.requests[0]["ok"] is True
