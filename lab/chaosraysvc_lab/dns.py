"""Cluster DNS: the node's answer to `<svc>.<ns>.svc.cluster.local` (the CoreDNS role).

A Service with a ClusterIP answers that ClusterIP; a headless Service answers the addresses of
its ready endpoints (from its EndpointSlices); `a-b-c-d.<ns>.pod.cluster.local` answers
`a.b.c.d`. Every other name, inside the cluster domain or not, is NXDOMAIN: there is no
internet here, so nothing is forwarded upstream. A background thread lists Services and
EndpointSlices every 0.5 s into memory; queries never call the API server.

    dns = ClusterDns(api, "198.18.10.1").start()   # UDP and TCP on port 53
    ...
    dns.stop()
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer, UDPServer
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from chaosraysvc.errors import ChaosRaySvcError

logger = logging.getLogger("chaostoolkit")

TTL = 5
SYNC_INTERVAL = 0.5
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class DnsError(ChaosRaySvcError):
    """The cluster DNS server could not start (names the address and why)."""


def _ready(endpoint: Any) -> bool:
    """An endpoint counts as ready when `conditions.ready` is true or unset (the API's rule)."""
    conditions = endpoint.conditions
    return conditions is None or conditions.ready is None or bool(conditions.ready)


def build_view(services: list[Any], slices: list[Any], domain: str) -> dict[str, list[str]]:
    """Return {fully qualified Service name: IPv4 addresses} from listed objects."""
    ready: dict[tuple[str, str], list[str]] = {}
    for item in slices:
        name = (item.metadata.labels or {}).get(SERVICE_NAME_LABEL)
        if not name or item.address_type != "IPv4":
            continue
        addresses = ready.setdefault((item.metadata.namespace, name), [])
        for endpoint in item.endpoints or []:
            if _ready(endpoint):
                addresses.extend(a for a in endpoint.addresses if a not in addresses)
    view: dict[str, list[str]] = {}
    for svc in services:
        meta, spec = svc.metadata, svc.spec
        fqdn = f"{meta.name}.{meta.namespace}.svc.{domain}".lower()
        if spec.cluster_ip == "None":
            view[fqdn] = sorted(ready.get((meta.namespace, meta.name), []))
        elif spec.cluster_ip and spec.type != "ExternalName":
            view[fqdn] = [spec.cluster_ip]
    return view


class _ExclusiveUdp(UDPServer):
    """dnslib's UDP server without SO_REUSEADDR: a second server on the port fails to bind."""

    def server_bind(self) -> None:
        self.allow_reuse_address = False
        super().server_bind()


class _Resolver(BaseResolver):
    """Answers from the owner's in-memory view."""

    def __init__(self, owner: ClusterDns) -> None:
        self.owner = owner

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        addresses = self.owner.lookup(qname)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=TTL))
        return reply  # a known name asked for another type: NOERROR, no answer


class ClusterDns:
    """A UDP and TCP DNS server for the cluster domain, fed by polling the API server."""

    def __init__(
        self, api_client: client.ApiClient, listen_ip: str, port: int = 53,
        domain: str = "cluster.local",
    ) -> None:  # fmt: skip
        self.api_client = api_client
        self.listen_ip = listen_ip
        self.domain = domain.strip(".").lower()
        self._port = port
        self._view: dict[str, list[str]] = {}
        self._servers: list[DNSServer] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port answered on (the one picked when constructed with 0)."""
        return self._port

    def lookup(self, name: str) -> list[str] | None:
        """Return the addresses of `name` (lower case, no trailing dot); None if unknown."""
        if name in self._view:
            return self._view[name]
        labels = name.split(".")
        suffix = f".pod.{self.domain}"
        if len(labels) == 3 + self.domain.count(".") + 1 and name.endswith(suffix):
            try:
                return [str(ipaddress.IPv4Address(labels[0].replace("-", ".")))]
            except ValueError:
                return None
        return None

    def start(self) -> ClusterDns:
        """List Services once, bind UDP and TCP and start answering; return self."""
        self.sync()
        quiet = DNSLogger(log="-request,-reply,-truncated", logf=logger.debug, prefix=False)
        resolver = _Resolver(self)
        for attempt in range(1 if self._port else 5):  # port 0: UDP's pick may be taken on TCP
            port = self._port
            try:
                udp = DNSServer(resolver, self.listen_ip, port, logger=quiet, server=_ExclusiveUdp)
                self._servers.append(udp)
                port = udp.server.server_address[1]
                tcp = DNSServer(resolver, self.listen_ip, port, tcp=True, logger=quiet)
                self._servers.append(tcp)
                self._port = port
                break
            except OSError as exc:
                self._close_servers()
                if attempt == 4 or self._port:
                    raise DnsError(
                        f"cluster DNS cannot listen on {self.listen_ip}:{port}: {exc.strerror};"
                        " is another DNS server there, or is the address not on this host?"
                    ) from exc
        for server in self._servers:
            server.start_thread()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cluster-dns-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and polling (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for server in self._servers:
            server.stop()
        self._close_servers()

    def _close_servers(self) -> None:
        for server in self._servers:
            server.server.server_close()
        self._servers = []

    def sync(self) -> None:
        """List Services and EndpointSlices of every namespace into the view."""
        core = client.CoreV1Api(self.api_client)
        discovery = client.DiscoveryV1Api(self.api_client)
        services = core.list_service_for_all_namespaces(_request_timeout=5).items
        slices = discovery.list_endpoint_slice_for_all_namespaces(_request_timeout=5).items
        self._view = build_view(services, slices, self.domain)

    def _loop(self) -> None:
        while not self._stop.wait(SYNC_INTERVAL):
            try:
                self.sync()
            except (ApiException, HTTPError, OSError) as exc:  # keep the last view; say why
                logger.warning("cluster DNS: cannot list Services/EndpointSlices: %s", exc)
