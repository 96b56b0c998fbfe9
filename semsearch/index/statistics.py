"""How long an index's documents are, from the cluster's own term statistics (pure functions).

BM25 already keeps, per text field, how many terms the field holds over all documents (``sum_ttf``) and how many
documents have it (``doc_count``). A ``_termvectors`` request for an artificial document answers both
(``field_statistics``) without reading any stored document, on OpenSearch and Elasticsearch alike; the searchers
ask it when they read an index's mapping (``IndexInfo.document_terms``), and adaptive fusion weighs keyword up in a
small index of long documents and down in one of short documents (:data:`semsearch.query.fusion.LONG_DOCUMENTS`,
:data:`semsearch.query.fusion.SHORT_DOCUMENTS`). The statistics are the shard's that the artificial document would go
to: in an index of several shards, one shard's mean stands for the index's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


ARTIFICIAL_TERM = "semsearch"


def field_statistics_body(text_fields: Sequence[str]) -> dict[str, Any]:
    """The ``_termvectors`` body that asks for each text field's statistics alone: an artificial document with one
    term per field (dotted names as objects; a word no stop or length filter drops, since a field whose term is dropped
    is missing from the answer), no term statistics, positions or offsets."""
    doc: dict[str, Any] = {}
    for name in text_fields:
        *parents, leaf = name.split(".")
        node = doc
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = ARTIFICIAL_TERM
    return {"doc": doc, "fields": list(text_fields), "field_statistics": True, "term_statistics": False,
            "positions": False, "offsets": False, "payloads": False}


def mean_document_terms(response: Mapping[str, Any] | None, text_fields: Sequence[str]) -> float | None:
    """How many terms a document holds on average over ``text_fields``, from the answer to
    :func:`field_statistics_body`: every field's ``sum_ttf`` over the most documents any field is in. None when there
    is no answer (a user who may not ask), no document, or a field whose count is not kept (``sum_ttf`` of -1: a
    field indexed without frequencies)."""
    vectors = (response or {}).get("term_vectors") or {}
    total, documents = 0, 0
    for name in text_fields:
        statistics = (vectors.get(name) or {}).get("field_statistics")
        if statistics is None:
            continue  # a field no document holds yet
        if statistics.get("sum_ttf", -1) < 0:
            return None
        total += statistics["sum_ttf"]
        documents = max(documents, statistics.get("doc_count", 0))
    return total / documents if documents else None
