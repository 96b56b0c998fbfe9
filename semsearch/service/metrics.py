"""Counters and histograms in Prometheus' text exposition format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _number(value: float) -> str:
    """Every digit (a counter printed as 1.23457e+06 would stop moving for rate())."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    escaped = (str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, escaped)) + "}"


class Counter:
    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[tuple(labels)] += amount

    def value(self, *labels: str) -> float:
        return self._values.get(tuple(labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in sorted(self._values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names, self.buckets = name, help_text, tuple(labels), tuple(buckets)
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, *labels: str) -> None:
        key = tuple(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1  # +Inf: every observation
            self._sums[key] += value

    def count(self, *labels: str) -> int:
        return self._counts.get(tuple(labels), [0])[-1]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self._counts.items()):
            for bound, count in zip([*self.buckets, "+Inf"], counts):
                le = bound if bound == "+Inf" else f"{bound:g}"
                lines.append(f"{self.name}_bucket{_labels((*self.label_names, 'le'), (*key, le))} {count}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(self._sums[key])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {counts[-1]}")
        return lines


class ServiceMetrics:
    """What ``GET /metrics`` reports."""

    def __init__(self) -> None:
        self.requests = Counter("semsearch_requests_total", "Requests answered, by endpoint (the service's own "
                                "paths, and proxy for every request sent on to the cluster) and status.",
                                ("endpoint", "status"))
        self.latency = Histogram("semsearch_search_seconds", "Latency of /v1/search by mode; mode neural_rewrite: "
                                 "rewriting a proxied search's neural clauses (encoding their texts), before the "
                                 "cluster runs it.", LATENCY_BUCKETS, ("mode",))
        self.batch_size = Histogram("semsearch_encoder_batch_size", "Query texts per encoder call.", BATCH_BUCKETS)
        self.cache = Counter("semsearch_query_vector_cache_total", "Query vectors from the cache (hit) or the "
                             "encoder (miss).", ("result",))
        self.rewrites = Counter("semsearch_neural_clauses_rewritten_total", "neural clauses rewritten to knn.")

    def render(self) -> str:
        parts = [self.requests, self.latency, self.batch_size, self.cache, self.rewrites]
        return "\n".join(line for part in parts for line in part.render()) + "\n"
