"""Vectors already computed, on disk: the same tokens through the same model give the same vector.

``SEMSEARCH_VECTOR_CACHE=FILE`` (SQLite; off by default). Re-ingesting a corpus into a second cluster,
re-running an ingest after a crash, or a rollback then re-migration read each vector back instead of
running the model again. An entry's key is a digest of the model's fingerprint, the precision and
device kind (half precision gives other digits), and the exact token ids the model would read, so a
changed text, tokenizer, prompt or model never meets an old vector. Processes may share one file
(SQLite's WAL journal: readers never wait for a writer).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np

# SQLite caps the variables of one statement (32766 since 3.32; 999 before).
_LOOKUP_CHUNK = 900

log = logging.getLogger(__name__)


def cache_namespace(fingerprint: dict, precision: str, device_type: str) -> bytes:
    """What the vectors of one encoder configuration share (pure)."""
    return json.dumps([fingerprint, precision, device_type], sort_keys=True).encode()


def cache_key(namespace: bytes, token_ids: Sequence[int], prompt_length: int) -> bytes:
    """The key of one model input: its tokens, and how many prompt tokens pooling leaves out (pure)."""
    digest = hashlib.blake2b(namespace, digest_size=20)
    digest.update(prompt_length.to_bytes(4, "little"))
    digest.update(np.asarray(token_ids, dtype=np.int64).tobytes())
    return digest.digest()


class VectorCache:
    """A SQLite file of float32 vectors by :func:`cache_key`; safe to share between threads and processes.

    A cache never fails an encode: a file that cannot be read or written (locked for minutes, a full disk,
    a read-only path) is reported once and left alone, and the model computes every vector.
    """

    def __init__(self, path: str | os.PathLike[str], dimension: int) -> None:
        self.path = os.fspath(path)
        self.dimension = dimension
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        try:
            self._db = sqlite3.connect(self.path, timeout=120, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a crash may lose the last vectors: recomputed
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) "
                             "WITHOUT ROWID")
        except sqlite3.Error as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        log.warning("vector cache %s is not usable (%s): encoding without it", self.path, exc)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The stored vectors of those ``keys`` that have one."""
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), _LOOKUP_CHUNK) if self._db is not None else ():
                    chunk = list(keys[start:start + _LOOKUP_CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk)
                    for key, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float32)
                        if vector.shape == (self.dimension,):
                            found[key] = vector
            except sqlite3.Error as exc:
                self._give_up(exc)
                found.clear()
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        rows = [(key, np.ascontiguousarray(vector, dtype=np.float32).tobytes()) for key, vector in zip(keys, vectors)]
        with self._lock:
            if self._db is None:
                return
            try:  # one transaction a batch, not one a row
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO vectors (key, vector) VALUES (?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._give_up(exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
