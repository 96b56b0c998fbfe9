"""Index creation, ingest of dbpedia-entity, search in every mode, eval — on the real node."""

import json

import pytest

from semsearch import Encoder, Searcher
from semsearch.errors import IndexMismatchError

from .conftest import last_json_line, run_cli


def test_index_create_sizes_vector_field_for_the_model(client, index_name, encoder):
    result = run_cli("index", "create", index_name)
    assert result.returncode == 0, result.stderr
    mapping = client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    vector = mapping["properties"]["embedding"]
    assert vector["type"] == "knn_vector"
    assert vector["dimension"] == encoder.dimension == 384
    assert mapping["_meta"]["semsearch"]["fingerprint"]["dimension"] == 384
    again = run_cli("index", "create", index_name)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_every_mode_finds_an_exact_title(dbpedia, encoder):
    name = dbpedia.name
    searcher = Searcher(encoder=encoder)
    for mode in ("keyword", "semantic", "hybrid"):
        hits = searcher.search("B. F. Skinner", index=name, k=5, mode=mode)
        assert len(hits) == 5
        assert hits[0].id == "<dbpedia:B._F._Skinner>", (mode, [h.id for h in hits])
        assert "embedding" not in hits[0].source and hits[0].source["title"] == "B. F. Skinner"
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_search_cli_json(dbpedia):
    name = dbpedia.name
    result = run_cli("search", "Apollo astronauts who walked on the Moon", "--index", name, "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 3 and set(hits[0]["contributions"]) == {"keyword", "semantic"}


def test_eval_json_prints_all_three_modes(dbpedia, data_dir):
    name = dbpedia.name
    folder = data_dir / "dbpedia-entity"
    result = run_cli("eval", "--index", name, "--queries", str(folder / "queries.jsonl"),
                     "--qrels", str(folder / "test.tsv"), "--json")
    assert result.returncode == 0, result.stderr
    scores = last_json_line(result.stdout)
    assert set(scores) == {"keyword", "semantic", "hybrid", "candidates", "hybrid_margin", "hybrid_fusion"}
    # The index keeps no fusion: hybrid used the default.
    assert scores.pop("hybrid_fusion") == {
        "fusion": "method=rrf keyword_weight=0.25 semantic_weight=1 rrf_k=20 adaptive=true", "stored_in_index": False}
    health = scores.pop("candidates")
    margin = scores.pop("hybrid_margin")
    # The margin over the better single mode, from the same runs as the means (each rounded to 4 places).
    assert margin["best_single_mode"] == "semantic" and margin["queries"] == 40
    assert margin["margin"] == pytest.approx(scores["hybrid"]["ndcg@10"] - scores["semantic"]["ndcg@10"], abs=2e-4)
    assert 0.0 < margin["standard_error"] < 0.05
    assert health["queries"] == 40 and set(health["lists"]) == {"keyword", "keyword_any", "semantic"}
    assert sum(health["keyword_evidence"].values()) == 40
    # Entity names of rare words ("keith urban") match few documents, and the kNN page holds the same ones:
    # the two orders are fused (fusion.AGREED) rather than the keyword order leading.
    assert health["keyword_evidence"].get("agreed", 0) >= 1, health
    for mode, values in scores.items():
        assert set(values) == {"ndcg@10", "recall@100"}
        assert 0.0 < values["ndcg@10"] <= 1.0 and 0.0 < values["recall@100"] <= 1.0
    # The dense model is far stronger than chance and than BM25 alone here (data README: 0.478 vs 0.309).
    assert scores["semantic"]["ndcg@10"] > scores["keyword"]["ndcg@10"]
    # Issue 6: with the defaults, hybrid beats both single modes by at least 0.01 nDCG@10.
    best_single = max(scores["keyword"]["ndcg@10"], scores["semantic"]["ndcg@10"])
    assert scores["hybrid"]["ndcg@10"] >= best_single + 0.01, scores


@pytest.mark.slow
def test_eval_tune_reports_the_best_fusion_without_changing_defaults(dbpedia, data_dir):
    name = dbpedia.name
    folder = data_dir / "dbpedia-entity"
    args = ("eval", "--index", name, "--queries", str(folder / "queries.jsonl"), "--qrels", str(folder / "test.tsv"))
    result = run_cli(*args, "--mode", "hybrid", "--tune", "--json")
    assert result.returncode == 0, result.stderr
    tuned = last_json_line(result.stdout)["tune"]
    # The best of the grid is at least as good as the default it was compared with, which is the default.
    assert tuned["best"]["ndcg@10"] >= tuned["current"]["ndcg@10"]
    assert tuned["current"]["fusion"] == "method=rrf keyword_weight=0.25 semantic_weight=1 rrf_k=20 adaptive=true"
    assert tuned["current"]["ndcg@10"] == last_json_line(result.stdout)["hybrid"]["ndcg@10"]
    # Settings found by --tune are given back through the fusion options, and reproduce its figure.
    best = tuned["best"]["fusion"]
    options = dict(part.split("=") for part in best.split())
    # An adaptive setting is the default's kind: weights without --fusion (which names a plain method).
    method = [] if options.get("adaptive") == "true" else ["--fusion", options["method"]]
    again = run_cli(*args, "--mode", "hybrid", "--json", *method,
                    "--keyword-weight", options["keyword_weight"], "--semantic-weight", options["semantic_weight"],
                    *(["--rrf-k", options["rrf_k"]] if "rrf_k" in options else []))
    assert again.returncode == 0, again.stderr
    assert last_json_line(again.stdout)["hybrid"]["ndcg@10"] == pytest.approx(tuned["best"]["ndcg@10"], abs=1e-4)


def test_server_side_sum_ranks_as_the_client_side_sum_on_a_real_corpus(dbpedia, data_dir, encoder):
    # On 5,000 documents Lucene skips blocks of hits: OpenSearch's knn query under a bool then lost
    # documents both clauses matched, unless every match is counted (semsearch.query.server_hybrid.sum_body).
    from semsearch import FusionConfig

    name = dbpedia.name
    searcher = Searcher(encoder=encoder)
    fusion = FusionConfig("sum", {"keyword": 0.003, "semantic": 1.0})
    with open(data_dir / "dbpedia-entity" / "queries.jsonl", encoding="utf-8") as handle:
        queries = [json.loads(line)["text"] for _, line in zip(range(40), handle)]
    for query in queries:
        server = searcher.search(query, index=name, k=10, fusion=fusion, server_side=True)
        local = searcher.search(query, index=name, k=10, fusion=fusion, server_side=False)
        assert [h.id for h in server] == [h.id for h in local], query
        assert [h.score for h in server] == pytest.approx([h.score for h in local], rel=1e-4), query


def test_query_with_another_encoder_is_refused(dbpedia, tmp_path):
    name = dbpedia.name
    from tests.unit.test_encoder import model_copy

    other = Encoder(str(model_copy(tmp_path, {"pooling_mode": "cls"})), device="cpu")
    with pytest.raises(IndexMismatchError, match="pooling"):
        Searcher(encoder=other).search("anything", index=name, mode="semantic")
    # Keyword search needs no encoder and still works.
    assert Searcher(encoder=other).search("Skinner", index=name, mode="keyword")


def test_long_documents_are_chunked_and_found_by_a_late_passage(client, index_name, tmp_path, encoder):
    filler = " ".join(f"Paragraph {i} describes the history of the harbour town and its fishing fleet."
                      for i in range(60))
    late = "Hidden at the very end: the lighthouse keeper's cat sailed alone to Antarctica on a driftwood raft."
    path = tmp_path / "long.jsonl"
    path.write_text(
        json.dumps({"_id": "long", "title": "Harbour town", "text": f"{filler} {late}"}) + "\n"
        + json.dumps({"_id": "short-1", "title": "Cats", "text": "Cats are small domesticated carnivores."}) + "\n"
        + json.dumps({"_id": "short-2", "title": "Volcanoes", "text": "A volcano is a rupture in a planet's crust."})
        + "\n")
    result = run_cli("ingest", str(path), "--index", index_name)
    assert result.returncode == 0, result.stderr
    assert "chunked 1" in result.stderr
    client.indices.refresh(index=index_name)
    stored = client.get(index=index_name, id="long")["_source"]
    assert len(stored["passages"]) > 2 and late in stored["passages"][-1]["text"]
    assert "passages" not in client.get(index=index_name, id="short-1")["_source"]
    # Truncated to its first 256 tokens, the long document would never match the late sentence.
    first_window_only = float(encoder.encode_query(late) @ encoder.encode_documents([f"Harbour town {filler}"])[0])
    hits = Searcher(encoder=encoder).search(late, index=index_name, k=3, mode="semantic")
    assert hits[0].id == "long", [(h.id, h.score) for h in hits]
    # It scores by its best passage, well above what its first window alone scores (lucene: (1 + cos) / 2).
    assert hits[0].score > (1 + first_window_only) / 2 + 0.05, (hits[0].score, first_window_only)
    assert "passages" not in hits[0].source


@pytest.mark.slow
def test_rerun_skips_what_is_indexed_and_encodes_only_changes(client, index_name, tmp_path, data_dir):
    lines = (data_dir / "dbpedia-entity" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    path = tmp_path / "twenty.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = run_cli("ingest", str(path), "--index", index_name)
    assert first.returncode == 0 and "indexed 20 of 20" in first.stderr, first.stderr
    again = run_cli("ingest", str(path), "--index", index_name)
    assert again.returncode == 0, again.stderr
    assert "indexed 0 of 20" in again.stderr and "skipped 20" in again.stderr
    changed = json.loads(lines[5])
    changed["text"] += " An added sentence."
    path.write_text("\n".join(lines[:5] + [json.dumps(changed)] + lines[6:]) + "\n", encoding="utf-8")
    third = run_cli("ingest", str(path), "--index", index_name)
    assert third.returncode == 0 and "indexed 1 of 20" in third.stderr and "skipped 19" in third.stderr
    client.indices.refresh(index=index_name)
    assert client.get(index=index_name, id=changed["_id"])["_source"]["text"].endswith("An added sentence.")
    forced = run_cli("ingest", str(path), "--index", index_name, "--no-skip-existing")
    assert forced.returncode == 0 and "indexed 20 of 20" in forced.stderr and "skipped 0" in forced.stderr
    assert client.count(index=index_name)["count"] == 20


def test_index_from_an_older_version_gets_the_id_keyword_before_writes(client, index_name, tmp_path, encoder):
    """An index made before semsearch_id existed, with a strict mapping: ingest maps the keyword first
    (a strict mapping would refuse the writes), and hybrid search then reads candidates' ids from it."""
    from semsearch.index.manage import create_index

    create_index(client, index_name, fingerprint=encoder.fingerprint.as_dict(), text_fields=["title", "text"],
                 vector_field="embedding", engine="lucene", analyzer="english", passages="passages")
    mapping = client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    old = f"{index_name}-old"
    properties = {k: v for k, v in mapping["properties"].items() if k != "semsearch_id"}
    client.indices.create(index=old, body={"settings": {"index": {"knn": True}},
                                           "mappings": {**mapping, "dynamic": "strict", "properties": properties}})
    try:
        path = tmp_path / "docs.jsonl"
        path.write_text("".join(json.dumps({"_id": f"d{i}", "title": t, "text": f"All about {t.lower()}."}) + "\n"
                                for i, t in enumerate(["Lighthouses", "Volcanoes", "Glaciers"])))
        result = run_cli("ingest", str(path), "--index", old)
        assert result.returncode == 0, result.stderr
        assert "indexed 3 of 3" in result.stderr
        mapped = client.indices.get_mapping(index=old)[old]["mappings"]["properties"]
        assert mapped["semsearch_id"] == {"type": "keyword"}
        client.indices.refresh(index=old)
        hits = Searcher(encoder=encoder).search("volcano", index=old, k=3)
        assert hits[0].id == "d1" and hits[0].source["title"] == "Volcanoes"
    finally:
        client.indices.delete(index=old, ignore_unavailable=True)


def test_an_ingest_s_documents_are_searchable_and_counted_when_it_ends(client, index_name, encoder, tmp_path):
    # An index refreshed seldom (60 s here; indexes written in bulk often are) shows nothing of an ingest until its next
    # refresh, and the searchers' read of the documents' mean length (_termvectors' field statistics) waits for no
    # refresh: when `semsearch ingest` says it indexed, what it wrote is searched and counted. (The long-documents
    # test once read the mean of perlmods' longest pages alone: its shortest, written last, were not yet refreshed.)
    from .conftest import COLLECTIONS, corpus_document_terms

    corpus = COLLECTIONS / "gitglossary" / "corpus.jsonl"
    documents = sum(1 for _ in corpus.open(encoding="utf-8"))
    assert run_cli("index", "create", index_name).returncode == 0
    client.indices.put_settings(index=index_name, body={"index": {"refresh_interval": "60s"}})
    result = run_cli("ingest", str(corpus), "--index", index_name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert client.count(index=index_name)["count"] == documents
    statistics = client.termvectors(index=index_name, body={"doc": {"text": "semsearch"}, "fields": ["text"],
                                                            "field_statistics": True})
    assert statistics["term_vectors"]["text"]["field_statistics"]["doc_count"] == documents
    document_terms = Searcher(encoder=encoder).index_info(index_name).document_terms
    assert document_terms == pytest.approx(corpus_document_terms(corpus), rel=0.02)


def test_ingest_into_an_index_that_searches_other_text_fields_is_refused(client, index_name, tmp_path):
    assert run_cli("index", "create", index_name).returncode == 0  # searches title and text
    path = tmp_path / "body.jsonl"
    path.write_text(json.dumps({"_id": "b1", "body": "Volcanoes erupt ash into the sky."}) + "\n", encoding="utf-8")
    refused = run_cli("ingest", str(path), "--index", index_name, "--text-field", "body")
    assert refused.returncode == 2, refused.stderr
    assert f"index '{index_name}' searches the text fields title, text" in refused.stderr
    assert client.count(index=index_name)["count"] == 0  # nothing written
    both = tmp_path / "both.jsonl"
    both.write_text(json.dumps({"_id": "t1", "title": "Volcano", "text": "Ash clouds ground flights."}) + "\n",
                    encoding="utf-8")
    same = run_cli("ingest", str(both), "--index", index_name, "--text-field", "text", "--text-field", "title")
    assert same.returncode == 0, same.stderr  # its own fields, in any order: accepted
    # and encoded in the index's order, as backfill reads them: nothing to encode again
    backfilled = run_cli("backfill", index_name, "--json")
    assert backfilled.returncode == 0 and last_json_line(backfilled.stdout)["encoded"] == 0, backfilled.stderr
    folder = run_cli("ingest", str(tmp_path), "--index", index_name)
    assert folder.returncode == 2 and "a directory: name the JSONL files in it" in folder.stderr
