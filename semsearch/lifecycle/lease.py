"""One lifecycle command at a time per name: a lease held in the cluster.

``enable_vectors``, ``backfill``, ``migrate`` and ``rollback`` each hold the lease of the name they were given for as
long as they run. Two of them at once on one name could undo each other: a second migration resumes into the first
one's new index and both swap, a rollback lifts the write block a migration's catch-up relies on. The second is
refused at once, with the holder named, instead.

The lease is a document in the hidden checkpoint index (``lease:NAME``), created with ``op_type=create`` (so exactly
one of two racing commands gets it) and renewed every :data:`RENEW_EVERY` seconds by a thread. A holder that died
without releasing it (``kill -9``, a lost machine) blocks the name until :data:`LEASE_SECONDS` after its last renewal;
on the same host a dead holder's lease is taken over at once. Renewals and take-overs are conditional on the
document's sequence number, so a lease never has two holders. Times are the holders' own clocks: hosts whose clocks
differ by more than the lease lose that much of its protection (or wait that much longer).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError, TransportError

from semsearch.errors import BusyError
from semsearch.lifecycle.checkpoints import CheckpointStore

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
RENEW_EVERY = 15.0
ACQUIRE_TRIES = 5


def lease_id(name: str) -> str:
    return f"lease:{name}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: what the lease document says."""

    command: str
    host: str
    pid: int
    started_at: float
    renewed_at: float

    def as_body(self) -> dict:
        return {"command": self.command, "host": self.host, "pid": self.pid, "started_at": self.started_at,
                "renewed_at": self.renewed_at}

    @classmethod
    def from_body(cls, body: dict) -> Holder:
        return cls(command=str(body.get("command") or "?"), host=str(body.get("host") or "?"),
                   pid=int(body.get("pid") or 0), started_at=float(body.get("started_at") or 0),
                   renewed_at=float(body.get("renewed_at") or 0))


def lapsed(holder: Holder, now: float, lease_seconds: float = LEASE_SECONDS) -> bool:
    """Whether a holder's lease has run out (pure)."""
    return now - holder.renewed_at > lease_seconds


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this host has ended (a zombie, not yet reaped by its parent, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def busy_message(name: str, holder: Holder, now: float, lease_seconds: float = LEASE_SECONDS) -> str:
    """What a refused command says (pure)."""
    since = datetime.fromtimestamp(holder.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"{name!r} is busy: semsearch {holder.command} (pid {holder.pid} on {holder.host}) has worked on it since "
            f"{since}, last seen {max(0.0, now - holder.renewed_at):.0f} s ago; one lifecycle command (enable-vectors, "
            f"backfill, migrate, rollback) runs on a name at a time. Run this once it has ended; if that process is "
            f"gone, its lease lapses {lease_seconds:.0f} s after it was last seen")


class Lease:
    """A held lease; renewed by a thread until :meth:`release`."""

    def __init__(self, client: OpenSearch, store: CheckpointStore, name: str, holder: Holder, seq_no: int,
                 primary_term: int, *, renew_every: float) -> None:
        self.client = client
        self.store = store
        self.name = name
        self.holder = holder
        self.lost = False
        self._version = (seq_no, primary_term)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_released, args=(renew_every,),
                                        name=f"lease {name}", daemon=True)
        self._thread.start()

    def _renew_until_released(self, every: float) -> None:
        while not self._stop.wait(every):
            seq_no, primary_term = self._version
            body = {**self.holder.as_body(), "renewed_at": time.time()}
            try:
                answer = self.client.index(index=self.store.index, id=lease_id(self.name), body=body,
                                           if_seq_no=seq_no, if_primary_term=primary_term)
            except (ConflictError, NotFoundError):
                # Taken over (a stall outlasted the lease) or deleted by hand: this run no longer holds the name.
                log.warning("the lease of %r was taken over or removed while this run held it", self.name)
                self.lost = True
                return
            except TransportError as exc:  # a node leaving: the next renewal goes through
                log.info("renewing the lease of %r failed (%s); retrying", self.name, exc)
                continue
            self._version = (answer["_seq_no"], answer["_primary_term"])

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.lost:
            return
        seq_no, primary_term = self._version
        try:
            self.client.delete(index=self.store.index, id=lease_id(self.name), if_seq_no=seq_no,
                               if_primary_term=primary_term)
        except (ConflictError, NotFoundError):
            pass
        except TransportError as exc:  # it lapses by itself
            log.warning("releasing the lease of %r failed (%s): it lapses %.0f s after its last renewal", self.name,
                        exc, LEASE_SECONDS)


def acquire(client: OpenSearch, name: str, command: str, *, store: CheckpointStore | None = None,
            lease_seconds: float = LEASE_SECONDS, renew_every: float = RENEW_EVERY,
            notify: Callable[[str], None] = log.info) -> Lease:
    """The lease of ``name`` for ``command``, or :class:`BusyError` naming its holder."""
    store = store or CheckpointStore(client)
    store.ensure()
    for _ in range(ACQUIRE_TRIES):  # each try loses only to another command's create, take-over or release
        now = time.time()
        mine = Holder(command=command, host=socket.gethostname(), pid=os.getpid(), started_at=now, renewed_at=now)
        try:
            answer = client.create(index=store.index, id=lease_id(name), body=mine.as_body())
            return Lease(client, store, name, mine, answer["_seq_no"], answer["_primary_term"],
                         renew_every=renew_every)
        except ConflictError:
            pass
        try:
            found = client.get(index=store.index, id=lease_id(name))
        except NotFoundError:  # released between the two calls
            continue
        holder = Holder.from_body(found["_source"])
        dead_here = holder.host == mine.host and holder.pid != os.getpid() and _process_gone(holder.pid)
        if not (dead_here or lapsed(holder, now, lease_seconds)):
            raise BusyError(busy_message(name, holder, now, lease_seconds))
        try:
            answer = client.index(index=store.index, id=lease_id(name), body=mine.as_body(),
                                  if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"])
        except ConflictError:  # another command took it over first
            continue
        why = "has ended" if dead_here else f"was last seen {now - holder.renewed_at:.0f} s ago"
        notify(f"note: took over {name!r} from semsearch {holder.command} (pid {holder.pid} on {holder.host}), which "
               f"{why} without finishing")
        return Lease(client, store, name, mine, answer["_seq_no"], answer["_primary_term"], renew_every=renew_every)
    raise BusyError(f"{name!r} is busy: other lifecycle commands keep taking its lease; try again")


_current = threading.local()  # the leases this thread holds, by name


@contextmanager
def held(client: OpenSearch, name: str, command: str, *, notify: Callable[[str], None] = log.info,
         lease_seconds: float = LEASE_SECONDS, renew_every: float = RENEW_EVERY) -> Iterator[Lease]:
    """Hold the lease of ``name`` for the block (:func:`acquire`), released however the block ends. A block inside
    another that holds the same name in this thread (one lifecycle call inside another) holds it already."""
    leases = _current.__dict__.setdefault("by_name", {})
    if name in leases:
        yield leases[name]
        return
    lease = acquire(client, name, command, notify=notify, lease_seconds=lease_seconds, renew_every=renew_every)
    leases[name] = lease
    try:
        yield lease
    finally:
        del leases[name]
        lease.release()


def check_held(name: str) -> None:
    """Before a step that must not run twice (a swap), :class:`BusyError` if this thread's lease of ``name`` was
    taken over meanwhile (it stalled past the lease); nothing where it holds none."""
    lease = getattr(_current, "by_name", {}).get(name)
    if lease is not None and lease.lost:
        raise BusyError(f"the lease of {name!r} was taken over by another command while this one stalled for over "
                        f"{LEASE_SECONDS:.0f} s; this run stops before changing the name")


def one_at_a_time(command: str):
    """Decorate a lifecycle function ``f(client, name, …)`` to run under the lease of ``name`` (its ``notify`` or
    ``on_wait`` hears a take-over)."""

    def decorate(function):
        @functools.wraps(function)
        def run(client, name, *args, **kwargs):
            notify = kwargs.get("notify") or kwargs.get("on_wait") or log.info
            with held(client, name, command, notify=notify):
                return function(client, name, *args, **kwargs)

        return run

    return decorate
