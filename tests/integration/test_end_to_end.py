"""Index creation, ingest of dbpedia-entity, search in every mode, eval — on the real node."""

import json
import uuid

import pytest

from semsearch import Encoder, Searcher
from semsearch.errors import IndexMismatchError

from .conftest import last_json_line, run_cli


@pytest.fixture(scope="module")
def encoder():
    return Encoder(device="cpu")


@pytest.fixture(scope="module")
def dbpedia(services, data_dir, tmp_path_factory):
    """dbpedia-entity (5,000 documents) ingested once through the CLI, in-process."""
    name = f"test_dbpedia_{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp("ingest")
    result = run_cli("ingest", str(data_dir / "dbpedia-entity" / "corpus.jsonl"), "--index", name, cwd=workdir)
    yield name, result
    services.indices.delete(index=name, ignore_unavailable=True)


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


def test_dbpedia_ingest_indexes_every_document_with_a_vector(client, dbpedia):
    name, result = dbpedia
    assert result.returncode == 0, result.stderr
    assert "indexed 5000 of 5000" in result.stderr
    client.indices.refresh(index=name)
    assert client.count(index=name)["count"] == 5000
    with_vector = client.count(index=name, body={"query": {"exists": {"field": "embedding"}}})["count"]
    assert with_vector == 5000


def test_every_mode_finds_an_exact_title(dbpedia, encoder):
    name, _ = dbpedia
    searcher = Searcher(encoder=encoder)
    for mode in ("keyword", "semantic", "hybrid"):
        hits = searcher.search("B. F. Skinner", index=name, k=5, mode=mode)
        assert len(hits) == 5
        assert hits[0].id == "<dbpedia:B._F._Skinner>", (mode, [h.id for h in hits])
        assert "embedding" not in hits[0].source and hits[0].source["title"] == "B. F. Skinner"
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_search_cli_json(dbpedia):
    name, _ = dbpedia
    result = run_cli("search", "Apollo astronauts who walked on the Moon", "--index", name, "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 3 and set(hits[0]["contributions"]) == {"keyword", "semantic"}


def test_eval_json_prints_all_three_modes(dbpedia, data_dir):
    name, _ = dbpedia
    folder = data_dir / "dbpedia-entity"
    result = run_cli("eval", "--index", name, "--queries", str(folder / "queries.jsonl"),
                     "--qrels", str(folder / "test.tsv"), "--json")
    assert result.returncode == 0, result.stderr
    scores = last_json_line(result.stdout)
    assert set(scores) == {"keyword", "semantic", "hybrid"}
    for mode, values in scores.items():
        assert set(values) == {"ndcg@10", "recall@100"}
        assert 0.0 < values["ndcg@10"] <= 1.0 and 0.0 < values["recall@100"] <= 1.0
    # The dense model is far stronger than chance and than BM25 alone here (data README: 0.478 vs 0.309).
    assert scores["semantic"]["ndcg@10"] > scores["keyword"]["ndcg@10"]


def test_query_with_another_encoder_is_refused(dbpedia, tmp_path):
    name, _ = dbpedia
    from tests.unit.test_encoder import model_copy

    other = Encoder(str(model_copy(tmp_path, {"pooling_mode": "cls"})), device="cpu")
    with pytest.raises(IndexMismatchError, match="pooling"):
        Searcher(encoder=other).search("anything", index=name, mode="semantic")
    # Keyword search needs no encoder and still works.
    assert Searcher(encoder=other).search("Skinner", index=name, mode="keyword")
