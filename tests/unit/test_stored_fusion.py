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
    ({"method": "minmax", "weights": {"keyword": 1}, "adaptive": True}, "adaptive keyword side needs rrf"),
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
