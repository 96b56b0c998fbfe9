"""The fusion an index keeps in its _meta: entries, their checks, the put-mapping body, and which fusion a search
uses (the searcher's precedence, without a cluster: the request is pure)."""

import pytest

from semsearch.errors import ConfigurationError
from semsearch.index.manage import IndexInfo
from semsearch.query.fusion import FusionConfig
from semsearch.query.plan import DEFAULT_FUSION
from semsearch.query.search import Searcher
from semsearch.query.stored_fusion import fusion_entry, fusion_from_entry, meta_with_fusion, stored_fusion

ZSCORE = FusionConfig("zscore", {"keyword": 0.1, "semantic": 1.0})


def _info(meta: dict) -> IndexInfo:
    return IndexInfo(name="faq", text_fields=["text"], vector_field="embedding", fingerprint={}, dimension=3,
                     meta=meta)


@pytest.mark.parametrize("fusion", [ZSCORE, DEFAULT_FUSION, FusionConfig("sum", None), FusionConfig("rrf", {"keyword": 0.0}, 30)])
def test_an_entry_gives_back_the_fusion_it_was_made_from(fusion):
    assert fusion_from_entry(fusion_entry(fusion)) == fusion


def test_an_entry_keeps_how_it_was_tuned():
    entry = fusion_entry(ZSCORE, {"judged_queries": 84, "ndcg@10": 0.91})
    assert entry["tuned"] == {"judged_queries": 84, "ndcg@10": 0.91}
    assert fusion_from_entry(entry) == ZSCORE


@pytest.mark.parametrize("entry, says", [
    ({"method": "borda", "weights": {}}, "method 'borda'"),
    ({"method": "zscore", "weights": {"keyword": -1}}, "numbers of 0 or more"),
    ({"method": "zscore", "weights": {"keyword": "high"}}, "numbers of 0 or more"),
    ({"method": "zscore", "weights": [0.1]}, "numbers of 0 or more"),
    ({"method": "minmax", "weights": {"keyword": 1}, "adaptive": True}, "true needs rrf"),
])
def test_an_entry_this_version_cannot_use_is_refused_clearly(entry, says):
    with pytest.raises(ConfigurationError, match=says) as refused:
        fusion_from_entry(entry, "faq")
    assert "'faq'" in str(refused.value)


def test_an_index_keeps_no_fusion_until_one_is_stored():
    assert stored_fusion(_info({"vector_field": "embedding"})) is None
    assert stored_fusion(_info({"vector_field": "embedding", "fusion": fusion_entry(ZSCORE)})) == ZSCORE


def test_storing_replaces_only_semsearchs_fusion_in_meta():
    meta = {"semsearch": {"vector_field": "embedding", "knn": {"m": 16}}, "owner": {"team": "search"}}
    stored = meta_with_fusion(meta, fusion_entry(ZSCORE))["_meta"]
    assert stored["owner"] == {"team": "search"}  # _meta is replaced whole: another program's entry is carried over
    assert stored["semsearch"]["knn"] == {"m": 16}
    assert fusion_from_entry(stored["semsearch"]["fusion"]) == ZSCORE
    assert "fusion" not in meta["semsearch"]  # pure: the mapping read is not changed
    cleared = meta_with_fusion(stored, None)["_meta"]
    assert cleared == meta


def test_an_index_without_semsearchs_meta_cannot_keep_a_fusion():
    with pytest.raises(ConfigurationError, match="enable-vectors"):
        meta_with_fusion({"owner": {}}, fusion_entry(ZSCORE))


def test_a_search_uses_the_calls_fusion_then_the_searchers_then_the_indexs_then_the_default():
    keeps = _info({"fusion": fusion_entry(ZSCORE)})
    plain = _info({})
    explicit = FusionConfig("minmax", {"keyword": 0.5, "semantic": 1.0})
    own = FusionConfig("rrf", {"keyword": 1.0, "semantic": 1.0}, 60)
    default_searcher, own_searcher = Searcher(client=object()), Searcher(client=object(), fusion=own)
    assert default_searcher.fusion_for(keeps, explicit) == explicit
    assert own_searcher.fusion_for(keeps) == own
    assert default_searcher.fusion_for(keeps) == ZSCORE
    assert default_searcher.fusion_for(plain) == DEFAULT_FUSION
    def request(fusion):
        return default_searcher._request("q", k=10, mode="hybrid", filters=None, fusion=fusion, window=None,
                                         offset=0, explain=False, highlight=False, source=True)

    assert request(None).fusion == DEFAULT_FUSION  # before the index is read
    assert default_searcher._for_index(request(None), keeps, None).fusion == ZSCORE
    assert default_searcher._for_index(request(None), plain, None).fusion == DEFAULT_FUSION
    assert default_searcher._for_index(request(explicit), keeps, explicit).fusion == explicit


@pytest.mark.parametrize("entry, says", [
    ("zscore", "not an object"),
    ({"method": "rrf", "rrf_k": None}, "rrf_k None"),
    ({"method": "rrf", "rrf_k": 0}, "rrf_k 0"),
    ({"method": "rrf", "rrf_k": True}, "rrf_k True"),
    ({"method": "rrf", "adaptive": "yes"}, "adaptive 'yes'"),
])
def test_every_refusal_of_a_stored_entry_names_the_way_out(entry, says):
    with pytest.raises(ConfigurationError, match=says) as refused:
        fusion_from_entry(entry, "faq")
    assert "semsearch index fusion faq --clear" in str(refused.value)


def test_searches_in_other_modes_never_read_the_stored_fusion():
    broken = _info({"fusion": {"method": "borda"}})
    searcher = Searcher(client=object())
    for mode in ("keyword", "semantic"):
        request = searcher._request("q", k=10, mode=mode, filters=None, fusion=None, window=None, offset=0,
                                    explain=False, highlight=False, source=True)
        assert searcher._for_index(request, broken, None) is request
    hybrid = searcher._request("q", k=10, mode="hybrid", filters=None, fusion=None, window=None, offset=0,
                               explain=False, highlight=False, source=True)
    with pytest.raises(ConfigurationError, match="--clear"):
        searcher._for_index(hybrid, broken, None)


class RecordingIndices:
    """The two mapping calls store_fusion makes, against mappings held here (a unit test of its order of work)."""

    def __init__(self, mappings):
        self.mappings, self.puts = mappings, []

    def get_mapping(self, index):
        return self.mappings

    def put_mapping(self, index, body):
        self.puts.append((index, body))


class RecordingClient:
    def __init__(self, mappings):
        self.indices = RecordingIndices(mappings)


def test_storing_writes_every_index_behind_an_alias_keeping_their_other_entries():
    from semsearch.query.stored_fusion import store_fusion

    client = RecordingClient({"faq-v2": {"mappings": {"_meta": {"semsearch": {"vector_field": "e2"}, "x": 1}}},
                              "faq-v1": {"mappings": {"_meta": {"semsearch": {"vector_field": "e1"}}}}})
    assert store_fusion(client, "faq", fusion_entry(ZSCORE)) == ["faq-v1", "faq-v2"]
    written = dict(client.indices.puts)
    assert written["faq-v2"]["_meta"]["x"] == 1 and written["faq-v2"]["_meta"]["semsearch"]["vector_field"] == "e2"
    assert all(fusion_from_entry(body["_meta"]["semsearch"]["fusion"]) == ZSCORE for body in written.values())


def test_a_refused_store_leaves_every_index_as_it_was():
    from semsearch.query.stored_fusion import store_fusion

    # One index behind the alias has no semsearch entry: found before anything is written.
    client = RecordingClient({"faq-a": {"mappings": {"_meta": {"semsearch": {"vector_field": "e"}}}},
                              "faq-b": {"mappings": {}}})
    with pytest.raises(ConfigurationError, match="index 'faq-b' has no semsearch vector field.*enable-vectors faq-b"):
        store_fusion(client, "faq", fusion_entry(ZSCORE))
    # An entry searches would refuse is refused before the mapping is even read.
    bad = {**fusion_entry(ZSCORE), "weights": {"keyword": -1.0}}
    with pytest.raises(ConfigurationError, match="numbers of 0 or more"):
        store_fusion(RecordingClient({"faq-a": {"mappings": {"_meta": {"semsearch": {}}}}}), "faq", bad)
    assert client.indices.puts == []


def test_eval_saves_only_a_setting_that_beats_the_current_one_and_carries():
    from semsearch.cli.commands import _save_tuned
    from semsearch.query.tuning import CrossCheck, Scored

    class Searcher_:  # the one attribute _save_tuned uses
        client = RecordingClient({"faq": {"mappings": {"_meta": {"semsearch": {"vector_field": "e"}}}}})

    best, current = Scored(ZSCORE, 0.91, 1.0), Scored(DEFAULT_FUSION, 0.88, 1.0)
    carried, did_not = CrossCheck(0.02, 84, ("a", "b")), CrossCheck(-0.01, 84, ("a", "b"))
    assert _save_tuned("faq", Searcher_, Scored(ZSCORE, 0.88, 1.0), current, 84, carried) == []  # no better
    assert _save_tuned("faq", Searcher_, best, current, 84, did_not) == []  # fitted to these queries only
    assert Searcher_.client.indices.puts == []
    assert _save_tuned("faq", Searcher_, best, current, 84, carried) == ["faq"]
    (index, body), = Searcher_.client.indices.puts
    stored = body["_meta"]["semsearch"]["fusion"]
    assert fusion_from_entry(stored) == ZSCORE
    assert stored["tuned"]["replaced"] == current.describe() and stored["tuned"]["cross_check_gain"] == 0.02


def test_save_needs_tune_and_compares_with_what_searches_use(tmp_path):
    from click.testing import CliRunner

    from semsearch.cli.commands import main

    queries, qrels = tmp_path / "q.jsonl", tmp_path / "qrels.tsv"
    queries.write_text('{"_id": "q1", "text": "x"}\n')
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    judged = ["eval", "--index", "faq", "--queries", str(queries), "--qrels", str(qrels)]
    runner = CliRunner()
    result = runner.invoke(main, [*judged, "--save"])
    assert result.exit_code == 2 and "pass --tune too" in result.output
    result = runner.invoke(main, [*judged, "--tune", "--save", "--keyword-weight", "0.5"])
    assert result.exit_code == 2 and "leave out --fusion" in result.output
    result = runner.invoke(main, ["index", "fusion", "faq", "--clear", "--fusion", "zscore"])
    assert result.exit_code == 2 and "takes no fusion options" in result.output
