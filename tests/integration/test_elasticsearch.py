"""The same CLI and API on a real Elasticsearch node (issue 8): index create, ingest in-process and
through Celery workers, every search mode, filters, paging, eval — started by scripts/services.sh
up --engine elasticsearch. Fails, never skips, when the node is missing."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from semsearch import FusionConfig, Searcher
from semsearch.errors import ConfigurationError
from semsearch.query.evaluation import load_queries
from semsearch.query.fusion import fuse_hybrid
from semsearch.query.plan import DEFAULT_FUSION, DEFAULT_WINDOW

from .conftest import ES_ENV, corpus_document_terms, eval_rankings_unlike_search, last_json_line, run_cli

BROKER = os.environ.get("SEMSEARCH_TEST_BROKER_URL", "redis://127.0.0.1:6379/1")


@pytest.fixture()
def es_index(es):
    name = f"test_es_{uuid.uuid4().hex[:12]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def es_dbpedia(es, data_dir, tmp_path_factory, vector_cache):
    """dbpedia-entity (5,000 documents) ingested once into Elasticsearch through the CLI, in-process. Its vectors
    come from the session's vector cache where the OpenSearch ingest already computed them (conftest.vector_cache):
    what differs here is the engine, not the encoding."""
    name = f"test_es_dbpedia_{uuid.uuid4().hex[:8]}"
    result = run_cli("ingest", str(data_dir / "dbpedia-entity" / "corpus.jsonl"), "--index", name,
                     env={**ES_ENV, "SEMSEARCH_VECTOR_CACHE": vector_cache}, cwd=tmp_path_factory.mktemp("es-ingest"))
    yield name, result
    es.indices.delete(index=name, ignore_unavailable=True)


def test_index_create_maps_a_dense_vector_sized_for_the_model(es, es_index):
    result = run_cli("index", "create", es_index, env=ES_ENV)
    assert result.returncode == 0, result.stderr
    assert "dense_vector" in result.stdout
    properties = es.indices.get_mapping(index=es_index)[es_index]["mappings"]["properties"]
    assert properties["embedding"]["type"] == "dense_vector"
    assert properties["embedding"]["dims"] == 384
    assert properties["embedding"]["similarity"] == "cosine"
    assert properties["passages"]["type"] == "nested"
    assert properties["passages"]["properties"]["embedding"]["dims"] == 384
    info = json.loads(run_cli("index", "info", es_index, env=ES_ENV).stdout)
    assert info["cluster"]["distribution"] == "elasticsearch"


@pytest.mark.slow
def test_dbpedia_ingest_indexes_every_document_with_a_vector(es, es_dbpedia):
    name, result = es_dbpedia
    assert result.returncode == 0, result.stderr
    assert "indexed 5000 of 5000" in result.stderr
    es.indices.refresh(index=name)
    assert es.count(index=name)["count"] == 5000
    assert es.count(index=name, body={"query": {"exists": {"field": "embedding"}}})["count"] == 5000


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_every_mode_finds_an_exact_title(es_settings, es_dbpedia, encoder, mode):
    name, _ = es_dbpedia
    hits = Searcher(es_settings, encoder=encoder).search("B. F. Skinner", index=name, k=5, mode=mode)
    assert hits[0].id == "<dbpedia:B._F._Skinner>", [h.id for h in hits]
    assert "embedding" not in hits[0].source and hits[0].source["title"] == "B. F. Skinner"


def test_phrase_matches_are_weighted_up_on_elasticsearch_too(es_settings, es_dbpedia, encoder):
    # Without the english analyzer semsearch maps the standard one with English stop words (semsearch_text):
    # the phrase search knows its stop words, runs, and the documents holding the phrase are weighted up.
    name, _ = es_dbpedia
    searcher = Searcher(es_settings, encoder=encoder)
    assert searcher.index_info(name).text_analyzers == ("semsearch_text", "semsearch_text")
    candidates = searcher.candidates("B. F. Skinner", index=name)
    phrase = [hit.id for hit in candidates["keyword_phrase"]]
    assert "<dbpedia:B._F._Skinner>" in phrase
    hits = searcher.search("B. F. Skinner", index=name, k=20, explain=True)
    assert hits[0].id == "<dbpedia:B._F._Skinner>" and hits[0].explanation["keyword"]["phrase_rank"] is not None
    without = fuse_hybrid({n: v for n, v in candidates.items() if n != "keyword_phrase"}, DEFAULT_FUSION,
                          DEFAULT_WINDOW)
    order, before, matches = [hit.id for hit in hits], [item.id for item in without], set(phrase)
    for doc_id in matches & set(order):  # only phrase matches can have come past a phrase match
        assert doc_id in before, doc_id  # it holds every term: the any-term list has it
        above_now = set(order[:order.index(doc_id)]) - matches
        assert above_now <= set(before[:before.index(doc_id)]) - matches, doc_id
    # "the" is one of its stop words: a phrase of one term is not asked for.
    assert "keyword_phrase" not in searcher.candidates("the skinner", index=name)


def test_eval_hybrid_beats_both_single_modes(es_dbpedia, data_dir):
    name, _ = es_dbpedia
    folder = data_dir / "dbpedia-entity"
    result = run_cli("eval", "--index", name, "--queries", str(folder / "queries.jsonl"),
                     "--qrels", str(folder / "test.tsv"), "--json", env=ES_ENV)
    assert result.returncode == 0, result.stderr
    scores = last_json_line(result.stdout)
    best_single = max(scores["keyword"]["ndcg@10"], scores["semantic"]["ndcg@10"])
    assert scores["hybrid"]["ndcg@10"] >= best_single + 0.01, scores


def test_eval_ranks_every_mode_as_the_searches_do_on_elasticsearch(es_settings, es_dbpedia, encoder, data_dir):
    name, _ = es_dbpedia
    texts = list(load_queries(data_dir / "dbpedia-entity" / "queries.jsonl").values())[:60]
    unlike = eval_rankings_unlike_search(Searcher(es_settings, encoder=encoder), name, texts)
    assert unlike["keyword"] == {}, unlike
    # Elasticsearch's kNN search is not repeatable to the last hit: its segments are searched at once and share the
    # bar a hit must pass, so the same semantic search twice differed on 0-2 of these 60 queries, from the 36th place
    # or deeper (seen while writing this test). eval asks the kNN list once for the three modes; a search after it may
    # differ as much: on a few queries, never in the top 10 that nDCG@10 scores.
    assert len(unlike["semantic"]) <= 6 and len(unlike["hybrid"]) <= 6, unlike
    assert min([*unlike["semantic"].values(), *unlike["hybrid"].values()], default=10) >= 10, unlike


def test_filters_apply_to_both_retrievers(es_settings, es_dbpedia, encoder):
    name, _ = es_dbpedia
    searcher = Searcher(es_settings, encoder=encoder)
    only_guitars = {"match": {"title": "guitar"}}
    for mode in ("keyword", "semantic", "hybrid"):
        hits = searcher.search("musical instrument tuning", index=name, k=5, mode=mode, filters=only_guitars)
        assert hits, mode
        assert all("guitar" in h.source["title"].lower() for h in hits), (mode, [h.source["title"] for h in hits])


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_pages_concatenate_to_one_list(es_settings, es_dbpedia, encoder, mode):
    name, _ = es_dbpedia
    searcher = Searcher(es_settings, encoder=encoder)
    whole = [h.id for h in searcher.search("astronauts who walked on the moon", index=name, k=20, mode=mode)]
    pages = [h.id for offset in (0, 5, 10, 15)
             for h in searcher.search("astronauts who walked on the moon", index=name, k=5, offset=offset, mode=mode)]
    assert len(whole) == 20 and pages == whole


def test_explain_contributions_add_up(es_settings, es_dbpedia, encoder):
    name, _ = es_dbpedia
    hits = Searcher(es_settings, encoder=encoder).search("Apollo astronauts", index=name, k=5, explain=True)
    for hit in hits:
        assert sum(part["contribution"] for part in hit.explanation.values()) == pytest.approx(hit.score)


SUM = FusionConfig("sum", {"keyword": 0.05, "semantic": 1.0})


@pytest.mark.parametrize("filters", [None, {"match": {"title": "river"}}], ids=["all", "filtered"])
def test_server_side_sum_ranks_as_the_client_side_sum(es_settings, es_dbpedia, encoder, filters):
    name, _ = es_dbpedia
    searcher = Searcher(es_settings, encoder=encoder)
    for query in ("Apollo astronauts", "rivers of Europe", "guitar tuning"):
        # Left to the searcher, a sum runs on the cluster (one bool query, any licence).
        server = searcher.search(query, index=name, k=10, fusion=SUM, filters=filters)
        local = searcher.search(query, index=name, k=10, fusion=SUM, filters=filters, server_side=False)
        assert [h.id for h in server] == [h.id for h in local], query
        assert [h.score for h in server] == pytest.approx([h.score for h in local], rel=1e-4), query
        assert all(h.contributions == {} for h in server) and all(h.contributions for h in local)
        assert server[0].source == local[0].source and "embedding" not in server[0].source


def test_rrf_retriever_is_refused_on_a_basic_licence_naming_it(es_settings, es_dbpedia, encoder):
    name, _ = es_dbpedia
    searcher = Searcher(es_settings, encoder=encoder)
    with pytest.raises(ConfigurationError, match="licence is basic"):
        searcher.search("moon", index=name, server_side=True, fusion=FusionConfig("rrf", rrf_k=20))
    # Left to the searcher, unweighted RRF fuses on the client there, with the same settings.
    auto = searcher.search("moon landing", index=name, k=5, fusion=FusionConfig("rrf", rrf_k=20))
    local = searcher.search("moon landing", index=name, k=5, fusion=FusionConfig("rrf", rrf_k=20), server_side=False)
    assert [h.id for h in auto] == [h.id for h in local] and all(h.contributions for h in auto)


def test_normalised_fusions_are_refused_server_side_with_the_reason(es_settings, es_dbpedia, encoder):
    name, _ = es_dbpedia
    with pytest.raises(ConfigurationError, match="linear retriever"):
        Searcher(es_settings, encoder=encoder).search("moon", index=name, server_side=True,
                                                      fusion=FusionConfig("minmax"))


def test_long_documents_are_chunked_and_found_by_a_late_passage(es, es_settings, es_index, tmp_path, encoder):
    filler = " ".join(f"Paragraph {i} describes the history of the harbour town and its fishing fleet."
                      for i in range(60))
    late = "Hidden at the very end: the lighthouse keeper's cat sailed alone to Antarctica on a driftwood raft."
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"_id": "long", "title": "Harbour town", "text": f"{filler} {late}"}) + "\n"
                    + json.dumps({"_id": "short", "title": "Cats", "text": "Cats are small carnivores."}) + "\n")
    result = run_cli("ingest", str(path), "--index", es_index, env=ES_ENV)
    assert result.returncode == 0, result.stderr
    assert "chunked 1" in result.stderr
    es.indices.refresh(index=es_index)
    hits = Searcher(es_settings, encoder=encoder).search(late, index=es_index, k=2, mode="semantic")
    assert hits[0].id == "long"
    first_window_only = float(encoder.encode_query(late) @ encoder.encode_documents([f"Harbour town {filler}"])[0])
    assert hits[0].score > (1 + first_window_only) / 2 + 0.05  # Elasticsearch cosine score: (1 + cos) / 2


@pytest.mark.slow
def test_celery_workers_write_to_elasticsearch(es, es_index, data_dir, tmp_path):
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    corpus = tmp_path / "corpus.jsonl"
    with open(data_dir / "dbpedia-entity" / "corpus.jsonl", encoding="utf-8") as src:
        corpus.write_text("".join(line for _, line in zip(range(200), src)), encoding="utf-8")
    log_path = tmp_path / "worker.log"
    env = {**os.environ, **ES_ENV, "SEMSEARCH_BROKER_URL": BROKER}
    with open(log_path, "w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "worker", "--device", "cpu"],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "ready." not in Path(log_path).read_text():
            assert worker.poll() is None and time.monotonic() < deadline, Path(log_path).read_text()
            time.sleep(0.5)
        result = run_cli("ingest", str(corpus), "--index", es_index, env={**ES_ENV, "SEMSEARCH_BROKER_URL": BROKER})
        assert result.returncode == 0, result.stderr + Path(log_path).read_text()[-3000:]
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        broker.flushdb()
    es.indices.refresh(index=es_index)
    assert es.count(index=es_index)["count"] == 200
    assert es.count(index=es_index, body={"query": {"exists": {"field": "embedding"}}})["count"] == 200


def test_async_searcher_gives_the_sync_hits(es_settings, es_dbpedia, encoder):
    import asyncio

    from semsearch import AsyncSearcher

    name, _ = es_dbpedia
    sync = Searcher(es_settings, encoder=encoder)

    async def run() -> dict:
        async with AsyncSearcher(es_settings, encoder=encoder) as searcher:
            return {mode: await searcher.search("guitar tuning", index=name, k=5, mode=mode)
                    for mode in ("keyword", "semantic", "hybrid")}

    for mode, hits in asyncio.run(run()).items():
        expected = sync.search("guitar tuning", index=name, k=5, mode=mode)
        assert [h.id for h in hits] == [h.id for h in expected], mode
        assert [h.score for h in hits] == pytest.approx([h.score for h in expected]), mode
        assert hits[0].source == expected[0].source


def test_both_searchers_read_the_documents_mean_length_from_elasticsearch(es_settings, es_dbpedia, encoder, data_dir):
    import asyncio

    from semsearch import AsyncSearcher

    name, _ = es_dbpedia
    # The node's term statistics count as the analyzer semsearch installs does: every token but English stop words.
    document_terms = Searcher(es_settings, encoder=encoder).index_info(name).document_terms
    assert document_terms == pytest.approx(corpus_document_terms(data_dir / "dbpedia-entity" / "corpus.jsonl"),
                                           rel=0.02)

    async def read() -> float | None:
        async with AsyncSearcher(es_settings, encoder=encoder) as searcher:
            return (await searcher.index_info(name)).document_terms

    assert asyncio.run(read()) == pytest.approx(document_terms)
