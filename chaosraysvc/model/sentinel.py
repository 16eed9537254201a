"""What a Redis Sentinel says about the Redis it watches, read from redis-cli's lines.

Ray's GCS asks the address it is given `INFO SENTINEL`: a non-empty answer means a Sentinel,
and it then connects to the one primary `SENTINEL MASTERS` names (Ray's
`src/ray/gcs/store_client/redis_context.cc`). A plain Redis answers `INFO SENTINEL` with
nothing. redis-cli without a tty prints an INFO section line by line and an array one element
a line, which is what these functions read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Primary", "parse_info_sentinel", "parse_masters", "parse_records", "replicas_up"]


@dataclass(frozen=True)
class Primary:
    """A primary as a Sentinel names it: its group, address and what it knows around it."""

    name: str  # the monitored group ("mymaster")
    host: str  # IP, or a host name with `sentinel announce-hostnames yes`
    port: int
    flags: str = ""  # "master", or "master,s_down,o_down" while it is seen down
    replicas: int = 0  # num-slaves
    sentinels: int = 0  # num-other-sentinels + 1
    quorum: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_info_sentinel(lines: Sequence[str]) -> list[Primary]:
    """Return the primaries of an `INFO SENTINEL` answer ([] for a plain Redis, whose answer
    is empty): `master0:name=mymaster,status=ok,address=198.18.1.5:6379,slaves=1,sentinels=3`.
    """
    found = []
    for line in lines:
        key, _, value = line.strip().partition(":")
        if not (key.startswith("master") and key[6:].isdigit()):
            continue
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        host, _, port = fields.get("address", "").rpartition(":")
        if not host or not port.isdigit():
            continue
        found.append(
            Primary(
                name=fields.get("name", ""),
                host=host,
                port=int(port),
                flags=fields.get("status", ""),
                replicas=_int(fields.get("slaves")),
                sentinels=_int(fields.get("sentinels")),
            )
        )
    return found


def parse_records(lines: Sequence[str]) -> list[dict[str, str]]:
    """Return the records of a `SENTINEL MASTERS` or `SENTINEL REPLICAS <group>` answer: per
    record, field names and values alternate (`name`, `mymaster`, `ip`, `198.18.1.5`, ...),
    each record's fields starting with `name`."""
    records: list[dict[str, str]] = []
    items = [line.strip() for line in lines]
    for key, value in zip(items[0::2], items[1::2], strict=False):
        if key == "name":
            records.append({})
        if records:
            records[-1][key] = value
    return records


def replicas_up(lines: Sequence[str]) -> list[str]:
    """Return the addresses of the replicas a `SENTINEL REPLICAS <group>` answer shows up
    and linked to their primary (flags without `s_down`/`disconnected`, link `ok`)."""
    return [
        f"{r.get('ip')}:{r.get('port')}"
        for r in parse_records(lines)
        if not {"s_down", "o_down", "disconnected"} & set(r.get("flags", "").split(","))
        and r.get("master-link-status", "ok") == "ok"
    ]


def parse_masters(lines: Sequence[str]) -> list[Primary]:
    """Return the primaries of a `SENTINEL MASTERS` answer (see `parse_records`)."""
    records = parse_records(lines)
    return [
        Primary(
            name=r.get("name", ""),
            host=r.get("ip", ""),
            port=_int(r.get("port")),
            flags=r.get("flags", ""),
            replicas=_int(r.get("num-slaves")),
            sentinels=_int(r.get("num-other-sentinels")) + 1,
            quorum=_int(r.get("quorum")),
        )
        for r in records
        if r.get("ip") and r.get("port", "").isdigit()
    ]


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0
