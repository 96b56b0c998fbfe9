"""Long documents as nested passages, each with its own vector (pure functions).

A Sentence-BERT model reads at most ``max_seq_length`` tokens (256 for all-MiniLM-L6-v2): the rest of a
long document never reaches its vector. The encoder splits such a document into overlapping token
windows (:meth:`semsearch.Encoder.encode_passages`); the bulk writer stores every window's vector in a
nested field (``build_index_body(..., passages="passages")``), and a nested knn query scores the
document by its best passage. A document that fits the window has no passages: its own vector is it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semsearch.engines.index_body import PASSAGES_TEXT_FIELD

PASSAGES_FIELD = "passages"
# Tokens shared by consecutive windows, so no sentence is cut without context.
DEFAULT_OVERLAP = 32


def chunking_meta(field: str, *, window: int, overlap: int = DEFAULT_OVERLAP) -> dict:
    """What ``_meta`` records about the passages: vectors are comparable only under the same chunking."""
    return {"field": field, "text_field": PASSAGES_TEXT_FIELD, "unit": "tokens", "window": window,
            "overlap": overlap}


def nested_knn_query(vector: Sequence[float], *, path: str, vector_field: str, k: int,
                     inner_hits: bool = True) -> dict[str, Any]:
    """Documents ranked by their best passage: a knn query inside a nested query (``score_mode: max``).

    ``inner_hits`` returns, per document, the passage that matched best (its text and position).
    """
    nested: dict[str, Any] = {
        "path": path,
        "score_mode": "max",
        "query": {"knn": {f"{path}.{vector_field}": {"vector": [float(x) for x in vector], "k": k}}},
    }
    if inner_hits:
        nested["inner_hits"] = {"size": 1, "_source": False,
                                "fields": [f"{path}.{PASSAGES_TEXT_FIELD}", f"{path}.position"]}
    return {"nested": nested}


def nested_knn_body(vector: Sequence[float], *, path: str, vector_field: str, k: int,
                    source_excludes: Sequence[str] = (), inner_hits: bool = True) -> dict[str, Any]:
    """A search body of :func:`nested_knn_query` alone, passages left out of ``_source``."""
    return {"size": k,
            "query": nested_knn_query(vector, path=path, vector_field=vector_field, k=k, inner_hits=inner_hits),
            "_source": {"excludes": [*source_excludes, path]}}
