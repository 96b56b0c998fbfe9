"""Progress of long jobs kept in the cluster (see :mod:`semsearch.lifecycle.backfill` for why there), and where the
lifecycle's leases live (:mod:`semsearch.lifecycle.lease`)."""

from __future__ import annotations

import time

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from semsearch.errors import ClusterError
from semsearch.lifecycle.bodies import CHECKPOINT_INDEX
from semsearch.writing.bulk import is_transient

CHECKPOINT_TRIES = 6


class CheckpointStore:
    """Progress of long jobs, one small document each, in the hidden index ``.semsearch-checkpoints``."""

    def __init__(self, client: OpenSearch, index: str = CHECKPOINT_INDEX) -> None:
        self.client = client
        self.index = index
        self._ready = False

    def ensure(self) -> None:
        if self._ready:
            return
        try:
            self.client.indices.create(index=self.index, body={"settings": {"index": {
                "hidden": True, "number_of_shards": 1, "auto_expand_replicas": "0-1"}}})
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise ClusterError(f"creating the checkpoint index {self.index!r} failed: {exc.info or exc}") from exc
        self._ready = True

    def get(self, key: str) -> dict | None:
        try:
            return self.client.get(index=self.index, id=key)["_source"]
        except NotFoundError:
            return None

    def save(self, key: str, state: dict) -> None:
        self.ensure()
        for attempt in range(CHECKPOINT_TRIES):
            try:
                self.client.index(index=self.index, id=key, body={**state, "updated_at": time.time()})
                return
            except TransportError as exc:  # connection errors included
                # A node leaving moves the checkpoint index's primary: a moment later the write goes through.
                if attempt == CHECKPOINT_TRIES - 1 or not (is_transient(exc) or exc.status_code == "N/A"):
                    raise
                time.sleep(1 + attempt)

    def delete(self, key: str) -> None:
        try:
            self.client.delete(index=self.index, id=key)
        except NotFoundError:
            pass
