"""When the ingest pipeline writes: while the encoder works on the next part, or after each batch.

Writing part N while part N+1 encodes hides the cluster's indexing time when the cluster has cores
of its own (a remote cluster) or the encoder hardly needs the CPU (a GPU). When a CPU encoder and
the cluster share this machine's cores, the two fight over them: each bulk request preempts one of
the encoder's threads, and the others wait for it at every operation. There, encoding a batch with
every core and then writing it with concurrent bulk requests (the node indexing on every core) is
faster: on 2 cores, 2,000 dbpedia documents went in 1.005-1.124x faster in three benchmark runs,
at 0.85-0.89x the pure encoder's rate (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from typing import TYPE_CHECKING, get_args
from urllib.parse import urlsplit

from semsearch.settings import WriteSchedule, split_urls

if TYPE_CHECKING:
    from semsearch.encoding.encoder import Encoder
    from semsearch.settings import Settings

WRITE_SCHEDULES: tuple[str, ...] = get_args(WriteSchedule)
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _normalised(host: str) -> str:
    """A host as names compare: without IPv6 brackets or a trailing dot, lower case (pure)."""
    return host.strip("[]").rstrip(".").lower()


def host_is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback or unspecified address, or a localhost name (pure)."""
    host = _normalised(host)
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 (not loopback to Python < 3.13)
    return address.is_loopback or address.is_unspecified or bool(mapped and mapped.is_loopback)


def host_is_this_machine(host: str, own_names: frozenset[str] | None = None) -> bool:
    """True when ``host`` names this machine: a loopback address, localhost, or one of ``own_names``
    (default: this machine's host names, looked up once per process)."""
    if host_is_loopback(host):
        return True
    names = own_host_names() if own_names is None else own_names
    return _normalised(host) in names


@functools.cache
def own_host_names() -> frozenset[str]:
    """This machine's host name and fully qualified name, lower case (getfqdn may ask DNS: once)."""
    names = {socket.gethostname(), socket.getfqdn()}
    return frozenset(name.lower() for name in names if name)


def writes_while_encoding(schedule: WriteSchedule, device_type: str, cluster_url: str,
                          own_names: frozenset[str] | None = None) -> bool:
    """Whether the pipeline writes while it encodes.

    ``auto`` writes after each batch only when the encoder runs on the CPU and the cluster's URL
    (any of them, for a comma-separated list) names this machine; a cluster reached through a local tunnel (``kubectl port-forward``) looks
    local too, and ``while_encoding`` is the setting for it.
    """
    if schedule not in WRITE_SCHEDULES:
        raise ValueError(f"unknown write schedule {schedule!r}; choose one of {', '.join(WRITE_SCHEDULES)}")
    if schedule != "auto":
        return schedule == "while_encoding"
    if device_type != "cpu":
        return True
    # Several nodes: any one on this machine shares its cores with the encoder.
    return not any(host_is_this_machine(urlsplit(url).hostname or "", own_names) for url in split_urls(cluster_url))


def write_while_encoding_for(settings: Settings, encoder: Encoder) -> bool:
    """:func:`writes_while_encoding` for ``settings`` (SEMSEARCH_WRITE_SCHEDULE, the cluster's URL)
    and ``encoder``'s device: what every ingest path of the CLI and the workers passes on."""
    return writes_while_encoding(settings.write_schedule, encoder.device.type, settings.opensearch_url)


def after_encoding_writers(cpu_count: int | None = None) -> int:
    """Concurrent bulk requests when writing after a batch: one per core of this machine (the
    cluster's too, since it runs here), at most 4 (pure given ``cpu_count``)."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(4, cores))
