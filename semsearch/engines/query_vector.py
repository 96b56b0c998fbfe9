"""The query vector as JSON numbers (pure), shared by the OpenSearch and Elasticsearch query bodies."""

from __future__ import annotations

from collections.abc import Sequence


def query_vector(vector: Sequence[float]) -> list[float]:
    """The vector as numbers of 9 significant digits: exactly the float32 the server parses, in about
    half the bytes of a float64's repr (a query body carries it twice with passages)."""
    return [float(f"{x:.9g}") for x in vector]
