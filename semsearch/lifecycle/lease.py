"""One lifecycle command at a time per name: a lease held in the cluster.

``enable_vectors``, ``backfill``, ``migrate`` and ``rollback`` each hold the lease of the name they were given for as
long as they run. Two of them at once on one name could undo each other: a second migration resumes into the first
one's new index and both swap, a rollback lifts the write block a migration's catch-up relies on. The second is
refused at once, with the holder named, instead. A versioned index (``docs-v3``) shares the lease of its base name
(``docs``): a backfill of one and a migration of the other work on the same documents.

The lease is a document in the hidden checkpoint index (``lease:NAME``), created with ``op_type=create`` (so exactly
one of two racing commands gets it) and renewed every :data:`RENEW_EVERY` seconds by a thread. Each lease carries a
random token: a write whose answer was lost (a timeout, then a retry that conflicts with the write itself) is told
from another holder's by reading the token back. A holder that died without releasing it (``kill -9``, a lost machine)
blocks the name until :data:`LEASE_SECONDS` after its last renewal; on the same machine (same boot and process
namespace, so a container sharing a host name does not count) a dead holder's lease is taken over at once. Renewals and
take-overs are conditional on the document's sequence number, so a lease never has two holders, and a step that must
not run twice (moving the name) first renews the lease itself (:func:`check_held`), so a run that stalled past its
lease learns it then rather than at its next renewal. Times are the holders' own clocks: hosts whose clocks differ by
more than the lease lose that much of its protection (or wait that much longer).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
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
RENEW_TIMEOUT = 10.0  # one renewal never waits longer than this (the client's own timeout is for bulk writes)
ACQUIRE_TRIES = 5

_VERSIONED = re.compile(r"^(.+)-v\d+$")


def lease_name(name: str) -> str:
    """The name whose lease covers ``name``: a versioned index's base (``docs-v3`` → ``docs``), else itself (pure)."""
    match = _VERSIONED.match(name)
    return match.group(1) if match else name


def lease_id(name: str) -> str:
    return f"lease:{lease_name(name)}"


def this_machine() -> str:
    """What tells this machine's processes apart from another's that happens to share its host name: the boot and
    the process namespace (a pid means the same process only within both)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            boot_id = boot.read().strip()
        return f"{boot_id}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux: pids are not compared across processes, the lease lapses by time alone
        return ""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: what the lease document says."""

    command: str
    host: str
    pid: int
    started_at: float
    renewed_at: float
    machine: str = ""
    token: str = ""

    def as_body(self) -> dict:
        return {"command": self.command, "host": self.host, "pid": self.pid, "started_at": self.started_at,
                "renewed_at": self.renewed_at, "machine": self.machine, "token": self.token}

    @classmethod
    def from_body(cls, body: dict) -> Holder:
        return cls(command=str(body.get("command") or "?"), host=str(body.get("host") or "?"),
                   pid=int(body.get("pid") or 0), started_at=float(body.get("started_at") or 0),
                   renewed_at=float(body.get("renewed_at") or 0), machine=str(body.get("machine") or ""),
                   token=str(body.get("token") or ""))


def lapsed(holder: Holder, now: float, lease_seconds: float = LEASE_SECONDS) -> bool:
    """Whether a holder's lease has run out (pure)."""
    return now - holder.renewed_at > lease_seconds


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended (a zombie, not yet reaped by its parent, has)."""
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


# The tokens of the leases this process holds (any thread): a lease document naming this process with another token
# was left by a lease of this process that is gone (its release lost), not by a live one.
_live_tokens: set[str] = set()
_live_lock = threading.Lock()


def holder_gone(holder: Holder, mine: Holder) -> bool:
    """Whether the holder's process is known to have ended: on this machine only, where its pid means that process."""
    if not holder.machine or holder.machine != mine.machine:
        return False
    if holder.pid == mine.pid:
        with _live_lock:
            return holder.token not in _live_tokens
    return _process_gone(holder.pid)


def busy_message(name: str, holder: Holder, now: float, lease_seconds: float = LEASE_SECONDS) -> str:
    """What a refused command says (pure)."""
    since = datetime.fromtimestamp(holder.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"{name!r} is busy: semsearch {holder.command} (pid {holder.pid} on {holder.host}) has worked on it since "
            f"{since}, last seen {max(0.0, now - holder.renewed_at):.0f} s ago; one lifecycle command (enable-vectors, "
            f"backfill, migrate, rollback) runs on a name at a time. Run this once it has ended; if that process is "
            f"gone, a command run on its machine takes the name over at once, and one run elsewhere once its lease "
            f"lapses, {lease_seconds:.0f} s after it was last seen")


class Lease:
    """A held lease; renewed by a thread until :meth:`release`. ``lost``: another command took it over."""

    def __init__(self, client: OpenSearch, store: CheckpointStore, name: str, holder: Holder, seq_no: int,
                 primary_term: int, *, renew_every: float) -> None:
        self.client = client
        self.store = store
        self.name = name
        self.holder = holder
        self.lost = False
        self._version = (seq_no, primary_term)
        self._lock = threading.Lock()  # one renewal at a time: the thread's, or check_held's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_released, args=(renew_every,),
                                        name=f"lease {name}", daemon=True)
        self._thread.start()

    def renew(self) -> bool:
        """Renew now, conditionally on the version last written; False once another command holds the lease."""
        with self._lock:
            if self.lost:
                return False
            seq_no, primary_term = self._version
            body = {**self.holder.as_body(), "renewed_at": time.time()}
            try:
                answer = self.client.index(index=self.store.index, id=lease_id(self.name), body=body,
                                           if_seq_no=seq_no, if_primary_term=primary_term,
                                           request_timeout=RENEW_TIMEOUT)
            except (ConflictError, NotFoundError):  # taken over, or a retried write of ours met the write itself
                answer = _read_if_mine(self.client, self.store, lease_id(self.name), self.holder,
                                       request_timeout=RENEW_TIMEOUT)
                if answer is None:
                    log.warning("the lease of %r was taken over or removed while this run held it", self.name)
                    self.lost = True
                    return False
            self._version = (answer["_seq_no"], answer["_primary_term"])
            return True


    def _renew_until_released(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not self.renew():
                    return
            except TransportError as exc:  # a node leaving, a slow answer: the next renewal goes through
                log.info("renewing the lease of %r failed (%s); retrying", self.name, exc)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        _discard(self.holder)
        if self.lost:
            return
        seq_no, primary_term = self._version
        try:
            self.client.delete(index=self.store.index, id=lease_id(self.name), if_seq_no=seq_no,
                               if_primary_term=primary_term, request_timeout=RENEW_TIMEOUT)
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
    key = lease_id(name)
    for _ in range(ACQUIRE_TRIES):  # each try loses only to another command's create, take-over or release
        now = time.time()
        mine = Holder(command=command, host=socket.gethostname(), pid=os.getpid(), started_at=now, renewed_at=now,
                      machine=this_machine(), token=secrets.token_hex(8))
        with _live_lock:
            _live_tokens.add(mine.token)  # before the write: a racing thread of this process sees it live
        try:
            answer = client.create(index=store.index, id=key, body=mine.as_body())
            return Lease(client, store, name, mine, answer["_seq_no"], answer["_primary_term"],
                         renew_every=renew_every)
        except ConflictError:
            pass
        except BaseException:
            _discard(mine)
            raise
        try:
            found = client.get(index=store.index, id=key)
        except NotFoundError:  # released between the two calls
            _discard(mine)
            continue
        holder = Holder.from_body(found["_source"])
        if holder.token == mine.token:  # our create went through, then its retry conflicted with it
            return Lease(client, store, name, mine, found["_seq_no"], found["_primary_term"], renew_every=renew_every)
        gone = holder_gone(holder, mine)
        if not (gone or lapsed(holder, now, lease_seconds)):
            _discard(mine)
            raise BusyError(busy_message(name, holder, now, lease_seconds))
        try:
            answer = client.index(index=store.index, id=key, body=mine.as_body(),
                                  if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"])
        except ConflictError:  # another command took it over first (or our write's retry met our write)
            mine_after = _read_if_mine(client, store, key, mine)
            if mine_after is None:
                _discard(mine)
                continue
            answer = mine_after
        why = "has ended" if gone else f"was last seen {now - holder.renewed_at:.0f} s ago"
        notify(f"note: took over {lease_name(name)!r} from semsearch {holder.command} (pid {holder.pid} on "
               f"{holder.host}), which {why} without finishing")
        return Lease(client, store, name, mine, answer["_seq_no"], answer["_primary_term"], renew_every=renew_every)
    raise BusyError(f"{name!r} is busy: other lifecycle commands keep taking its lease; try again")


def _discard(holder: Holder) -> None:
    with _live_lock:
        _live_tokens.discard(holder.token)


def _read_if_mine(client: OpenSearch, store: CheckpointStore, key: str, mine: Holder, **timeout) -> dict | None:
    """After a conflict: the lease document, where it still carries ``mine``'s token (a retried write of ours)."""
    try:
        found = client.get(index=store.index, id=key, **timeout)
    except NotFoundError:
        return None
    return found if found["_source"].get("token") == mine.token else None


_current = threading.local()  # the leases this thread holds, by lease name


def _held_here() -> dict[str, Lease]:
    return _current.__dict__.setdefault("by_name", {})


@contextmanager
def held(client: OpenSearch, name: str, command: str, *, notify: Callable[[str], None] = log.info,
         lease_seconds: float = LEASE_SECONDS, renew_every: float = RENEW_EVERY) -> Iterator[Lease]:
    """Hold the lease of ``name`` for the block (:func:`acquire`), released however the block ends. A block inside
    another that holds the same name in this thread (one lifecycle call inside another, or the CLI's enable-vectors
    and the backfill after it) holds it already."""
    leases = _held_here()
    key = lease_name(name)
    if key in leases:
        yield leases[key]
        return
    lease = acquire(client, name, command, notify=notify, lease_seconds=lease_seconds, renew_every=renew_every)
    leases[key] = lease
    try:
        yield lease
    finally:
        del leases[key]
        lease.release()


def check_held(name: str) -> None:
    """Before a step that must not run twice (moving the name): renew this thread's lease of ``name`` now, and
    :class:`BusyError` if another command has taken it over (this one stalled past its lease); nothing where this
    thread holds none."""
    lease = _held_here().get(lease_name(name))
    if lease is not None and not lease.renew():
        raise BusyError(f"the lease of {lease_name(name)!r} was taken over by another command while this one stalled "
                        f"for over {LEASE_SECONDS:.0f} s; this run stops before changing the name")


def still_held(name: str) -> bool:
    """False once this thread's lease of ``name`` was taken over: a run that lost it leaves the shared state (write
    blocks, the copy, checkpoints) to the command that took it, rather than undo that one's work in its clean-up."""
    lease = _held_here().get(lease_name(name))
    return lease is None or not lease.lost


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
