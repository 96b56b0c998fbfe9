"""Answers that not every shard took part in: a node down, a shard failed or timed out.

Such an answer is never passed off as complete. By ``Settings.partial_results`` it is flagged (the
:class:`semsearch.query.plan.Hits` list's ``partial``, and each ``Hit.partial``: an empty partial answer still says
so) or the search fails (:class:`PartialResultsError`). A *skipped* shard is not missing: the cluster skips a
shard that its pre-filter shows holds no match (and counts it as successful too), a whole answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semsearch.errors import ClusterError
from semsearch.query.plan import Hit, Hits


class PartialResultsError(ClusterError):
    """Some shards did not answer a search, and SEMSEARCH_PARTIAL_RESULTS=fail."""


def shortfall(response: Mapping[str, Any]) -> str | None:
    """Why ``response`` (a search answer, or one item of an ``_msearch``) is partial, or None when every
    shard answered (pure)."""
    shards = response.get("_shards") or {}
    total = int(shards.get("total", 0))
    # "successful" includes the skipped shards; a shard with no copy left may be missing from "failed".
    missing = max(total - int(shards.get("successful", total)), int(shards.get("failed", 0)))
    reasons = []
    if missing:
        causes = sorted({_cause(f) for f in shards.get("failures") or []} - {""})
        reasons.append(f"{missing} of {total} shards did not answer" + (f" ({'; '.join(causes[:2])})" if causes else ""))
    if response.get("timed_out"):
        reasons.append("the search timed out")
    return ", ".join(reasons) or None


def _cause(failure: Mapping[str, Any]) -> str:
    reason = failure.get("reason")
    if isinstance(reason, Mapping):
        return str(reason.get("type") or reason.get("reason") or "")
    return str(reason or "")


def settle_partial(hits: list[Hit], shortfalls: list[str], policy: str, index: str) -> Hits:
    """``hits`` as the caller gets them (the same list when it is a :class:`Hits` already, so what it says of the
    fusion stays): as they are when every shard answered; else flagged partial, the list and each hit (policy
    ``flag``), or :class:`PartialResultsError` (policy ``fail``)."""
    answer = hits if isinstance(hits, Hits) else Hits(hits)  # keeps how hybrid fused them (explain)
    if not shortfalls:
        return answer
    if policy == "fail":
        raise PartialResultsError(f"search on {index!r} was partial: {'; '.join(shortfalls)} "
                                  "(SEMSEARCH_PARTIAL_RESULTS=fail; 'flag' returns such hits marked partial)")
    answer.partial, answer.shortfalls = True, tuple(shortfalls)
    for hit in answer:
        hit.partial = True
    return answer
