"""Searching from application code: keyword, semantic and hybrid modes over one index."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from .config import Settings
from .encoder import Encoder
from .errors import ClusterError, ConfigurationError
from .fusion import FusionConfig, Ranked, fuse
from .index import IndexInfo, check_fingerprint, get_index_info
from .queries import Filters, keyword_body, knn_body, msearch_body

MODES = ("hybrid", "semantic", "keyword")
# Plain reciprocal-rank fusion. Not yet tuned: on dbpedia-entity it scores below semantic alone
# (nDCG@10 0.494 vs 0.511), and no fusion weighting tried there beat semantic by the +0.01 issue 6 asks.
DEFAULT_FUSION = FusionConfig(method="rrf", weights={"keyword": 1.0, "semantic": 1.0})
DEFAULT_WINDOW = 100
INFO_TTL = 30.0


@dataclass
class Hit:
    """One result: the document id, its score in this mode, its source and per-mode contributions."""

    id: str
    score: float
    source: dict[str, Any] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)


class QueryVectorCache:
    """A bounded LRU of query vectors: repeated queries skip the encoder."""

    def __init__(self, encoder_fn, size: int = 1024) -> None:
        self._encode = encoder_fn
        self._size = size
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, text: str) -> np.ndarray:
        if text in self._items:
            self._items.move_to_end(text)
            return self._items[text]
        vector = self._encode(text)
        self._items[text] = vector
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return vector


class Searcher:
    """Encodes the query and combines kNN with BM25.

    ``settings`` default to the environment (``SEMSEARCH_*``). The encoder loads on first
    semantic or hybrid query, and must match the index's fingerprint.
    """

    def __init__(self, settings: Settings | None = None, *, client: OpenSearch | None = None,
                 encoder: Encoder | None = None, fusion: FusionConfig = DEFAULT_FUSION,
                 window: int = DEFAULT_WINDOW) -> None:
        from .client import make_client  # noqa: PLC0415

        self.settings = settings or Settings()
        self.client = client or make_client(self.settings)
        self._encoder = encoder
        self.fusion = fusion
        self.window = window
        self._infos: dict[str, tuple[IndexInfo, float]] = {}
        self._checked: set[str] = set()
        self._vectors = QueryVectorCache(lambda text: self.encoder.encode_query(text))

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.settings.model, self.settings.device,
                                    token_budget=self.settings.token_budget)
        return self._encoder

    def index_info(self, index: str) -> IndexInfo:
        """The index's mapping facts, re-read every ``INFO_TTL`` seconds: a blue/green swap can move the name."""
        cached = self._infos.get(index)
        if cached is None or time.monotonic() - cached[1] > INFO_TTL:
            self._infos[index] = (get_index_info(self.client, index), time.monotonic())
        return self._infos[index][0]

    def search(self, text: str, *, index: str, k: int = 10, mode: str = "hybrid", filters: Filters = None,
               fusion: FusionConfig | None = None, window: int | None = None) -> list[Hit]:
        """The top ``k`` hits for ``text`` in ``mode`` (hybrid, semantic or keyword)."""
        if mode not in MODES:
            raise ConfigurationError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if k <= 0:
            raise ConfigurationError(f"k must be positive, got {k}")
        info = self.index_info(index)
        excludes = [info.vector_field] + ([info.passages_field] if info.passages_field else [])
        bodies: dict[str, dict] = {}
        size = k if mode != "hybrid" else max(k, window or self.window)
        if mode in ("keyword", "hybrid"):
            bodies["keyword"] = keyword_body(text, info.text_fields, size, filters, excludes)
        if mode in ("semantic", "hybrid"):
            if info.index not in self._checked:  # per concrete index: a swapped alias is checked again
                check_fingerprint(info, self.encoder.fingerprint.as_dict())
                self._checked.add(info.index)
            vector = self._vectors.get(text)
            bodies["semantic"] = knn_body(vector, info.vector_field, size, filters, excludes,
                                          passages_field=info.passages_field)
        responses = self._msearch(index, bodies)
        if mode != "hybrid":
            hits = responses[mode]
            return [Hit(h["_id"], float(h["_score"]), h.get("_source", {}), {mode: float(h["_score"])})
                    for h in hits[:k]]
        sources = {h["_id"]: h.get("_source", {}) for hits in responses.values() for h in hits}
        ranked = {name: [Ranked(h["_id"], float(h["_score"])) for h in hits] for name, hits in responses.items()}
        fused = fuse(ranked, fusion or self.fusion)
        return [Hit(f.id, f.score, sources[f.id], f.contributions) for f in fused[:k]]

    def _msearch(self, index: str, bodies: dict[str, dict]) -> dict[str, list[dict]]:
        try:
            response = self.client.msearch(body=msearch_body(index, list(bodies.values())))
        except TransportError as exc:  # connection failures included
            from .client import cluster_error  # noqa: PLC0415

            raise cluster_error(exc, f"search on {index!r}", self.settings) from exc
        results: dict[str, list[dict]] = {}
        for name, item in zip(bodies, response["responses"]):
            if "error" in item:
                error = item["error"]
                reason = error.get("reason") if isinstance(error, dict) else error
                raise ClusterError(f"{name} search on {index!r} failed: {reason}")
            results[name] = item["hits"]["hits"]
        return results
