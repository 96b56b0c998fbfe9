"""The searchers' conversation with the cluster (semsearch.query.steps), answered here by a script."""

import pytest

from semsearch.errors import ConfigurationError
from semsearch.index.manage import IndexInfo
from semsearch.query.fusion import FusionConfig
from semsearch.query.plan import SearchRequest
from semsearch.query.server_hybrid import (
    NEEDS_NEURAL_SEARCH,
    NEEDS_RRF_LICENCE,
    PIPELINE,
    RRF_RETRIEVER,
    ServerRoute,
)
from semsearch.query.steps import MultiSearch, Probe, ServerRouteRefused, ServerSearch, search_steps

VECTOR = [0.5, -0.25, 0.125]
INFO = IndexInfo(name="docs", text_fields=["title", "text"], vector_field="embedding", fingerprint={}, dimension=3,
                 index="docs-v1")
PLAIN_RRF = FusionConfig("rrf")


def ranked(ids):
    return [{"_id": doc_id, "_score": 10.0 - rank} for rank, doc_id in enumerate(ids)]


def converse(steps, answer):
    """Answer each request of ``steps`` with ``answer(step)`` (which may raise ServerRouteRefused, thrown
    into the steps as the searchers do); the requests seen and the hits returned."""
    seen, value, reply = [], None, steps.send
    while True:
        try:
            step = reply(value)
        except StopIteration as done:
            return seen, done.value
        seen.append(step)
        try:
            value, reply = answer(step), steps.send
        except ServerRouteRefused as exc:
            value, reply = exc, steps.throw


def cluster(candidates, *, probe=None, server=None):
    """A scripted cluster: ``candidates`` per retriever for an _msearch, sources for the page's ids."""
    def answer(step):
        if isinstance(step, Probe):
            return probe
        if isinstance(step, ServerSearch):
            if isinstance(server, Exception):
                raise server
            return server
        if "sources" in step.bodies:
            ids = step.bodies["sources"]["query"]["ids"]["values"]
            return {"sources": [{"_id": i, "_source": {"title": i.upper()}} for i in ids]}
        return {name: candidates[name] for name in step.bodies}
    return answer


def steps_for(request, route=None, forced=False, refusals=None):
    refused = (lambda r, f, exc: refusals.append((r, f, str(exc)))) if refusals is not None else None
    return search_steps(request.validate(), INFO, VECTOR, index="docs", route=route, forced=forced, refused=refused)


def test_client_fusion_is_one_msearch_then_the_pages_sources():
    request = SearchRequest("moon landing", k=2, window=10, fusion=PLAIN_RRF)
    seen, hits = converse(steps_for(request), cluster({"keyword": ranked(["a", "b"]), "semantic": ranked(["b", "c"])}))
    assert [type(s) for s in seen] == [MultiSearch, MultiSearch]
    assert list(seen[0].bodies) == ["keyword", "semantic"] and seen[0].index == "docs"
    assert list(seen[1].bodies) == ["sources"]
    assert [h.id for h in hits] == ["b", "a"]
    assert hits[0].source == {"title": "B"}


def test_keyword_mode_needs_no_sources_step():
    seen, hits = converse(steps_for(SearchRequest("moon", mode="keyword", k=2)),
                          cluster({"keyword": ranked(["a", "b"])}))
    assert [type(s) for s in seen] == [MultiSearch] and [h.id for h in hits] == ["a", "b"]


def test_a_route_the_cluster_refuses_falls_back_to_the_client_and_is_reported():
    refusals = []
    route = ServerRoute(RRF_RETRIEVER, NEEDS_RRF_LICENCE, "elasticsearch")
    request = SearchRequest("moon", k=2, window=10, fusion=PLAIN_RRF, source=False)
    seen, hits = converse(steps_for(request, route, refusals=refusals),
                          cluster({"keyword": ranked(["a"]), "semantic": ranked(["a", "c"])},
                                  server=ServerRouteRefused("the cluster refused it (security_exception)")))
    assert [type(s) for s in seen] == [Probe, ServerSearch, MultiSearch]
    assert refusals == [(route, False, "the cluster refused it (security_exception)")]
    assert [h.id for h in hits] == ["a", "c"]


def test_a_route_the_cluster_lacks_is_never_tried_unless_forced():
    route = ServerRoute(PIPELINE, NEEDS_NEURAL_SEARCH)
    request = SearchRequest("moon", k=1, window=10, fusion=PLAIN_RRF, source=False)
    lists = {"keyword": ranked(["a"]), "semantic": ranked(["a"])}
    seen, _ = converse(steps_for(request, route), cluster(lists, probe="neural-search is not installed"))
    assert [type(s) for s in seen] == [Probe, MultiSearch]
    with pytest.raises(ConfigurationError, match="neural-search is not installed"):
        converse(steps_for(request, route, forced=True), cluster(lists, probe="neural-search is not installed"))


def test_a_pipeline_route_names_its_pipeline_and_body():
    route = ServerRoute(PIPELINE, NEEDS_NEURAL_SEARCH)
    request = SearchRequest("moon", k=1, window=10, fusion=PLAIN_RRF, source=False)
    seen, hits = converse(steps_for(request, route), cluster({}, server=ranked(["z"])))
    assert [type(s) for s in seen] == [Probe, ServerSearch]
    assert seen[1].pipeline and "phase_results_processors" in seen[1].pipeline_body
    assert "hybrid" in seen[1].body["query"] and [h.id for h in hits] == ["z"]


def test_a_candidate_without_the_keyword_id_asks_again_reading_ids_from_the_source():
    info = IndexInfo(name="docs", text_fields=["title"], vector_field="embedding", fingerprint={}, dimension=3,
                     index="docs", id_field="semsearch_id")
    request = SearchRequest("moon", k=1, window=10, fusion=PLAIN_RRF, source=False).validate()
    no_ids = {"keyword": [{"_score": 1.0, "fields": {}}], "semantic": [{"_score": 1.0, "fields": {}}]}
    answers = iter([no_ids, {"keyword": ranked(["a"]), "semantic": ranked(["a"])}])
    seen, hits = converse(search_steps(request, info, VECTOR, index="docs", route=None, forced=False, refused=None),
                          lambda step: next(answers))
    assert "docvalue_fields" in seen[0].bodies["keyword"] and "docvalue_fields" not in seen[1].bodies["keyword"]
    assert [h.id for h in hits] == ["a"]


def test_a_one_term_querys_fusion_counts_its_terms_with_the_index_analyzers_and_never_when_filtered():
    import dataclasses
    import math

    # git's "add" in 69 pages, 38 of which hold it: the best match holds it throughout (term-frequency factor 0.98).
    idf = math.log(1 + (69 - 38 + 0.5) / (38 + 0.5))
    any_term = [{"_id": "add" if i == 0 else f"p{i}", "_score": 2.2 * idf * (0.98 if i == 0 else 0.85 - 0.01 * i)}
                for i in range(38)]
    semantic = [{"_id": doc_id, "_score": 0.7 - 0.005 * rank} for rank, doc_id in enumerate(["p5", "p9", "add"])]
    candidates = {"keyword": any_term, "keyword_any": any_term, "semantic": semantic, "documents": 69}

    def reason(info, **options):
        request = SearchRequest("add", k=10, window=100, explain=True, **options).validate()
        _, hits = converse(search_steps(request, info, VECTOR, index="docs", route=None, forced=False, refused=None),
                           cluster(candidates))
        return hits.fusion.reason

    english = dataclasses.replace(INFO, text_analyzers=("english", "english"))
    assert reason(english) == "subject"
    # An analyzer whose stop words are unknown: the terms are not counted, so no SUBJECT (the small index's fusion).
    assert reason(dataclasses.replace(INFO, text_analyzers=("english", "my_analyzer"))) == "small_index"
    # A filter: the 69 documents counted are not those BM25's idf is of.
    assert reason(english, filters={"term": {"lang": "en"}}) == "small_index"
    # The index's documents' mean length (IndexInfo.document_terms) reaches the fusion: pages are LONG_DOCUMENTS.
    assert reason(dataclasses.replace(INFO, text_analyzers=("english", "my_analyzer"), document_terms=1961.0)) \
        == "long_documents"
    assert reason(dataclasses.replace(english, document_terms=1961.0)) == "subject"  # SUBJECT is asked first
