import math

import pytest

from semsearch.errors import InputError
from semsearch.query.evaluation import evaluate, load_qrels, load_queries, ndcg_at_k, recall_at_k


def test_qrels_with_and_without_header(tmp_path):
    with_header = tmp_path / "a.tsv"
    with_header.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    without = tmp_path / "b.tsv"
    without.write_text("q1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    assert load_qrels(with_header) == expected == load_qrels(without)


def test_bad_qrels_line_is_named(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("q1\td1\t1\nq2\td2\n")
    with pytest.raises(InputError, match=r"q.tsv:2: expected 3"):
        load_qrels(path)


def test_queries(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"_id": "q1", "text": "hello"}\n\n{"_id": 2, "text": "two"}\n')
    assert load_queries(path) == {"q1": "hello", "2": "two"}
    path.write_text('{"_id": "q1"}\n')
    with pytest.raises(InputError, match=r"q.jsonl:1"):
        load_queries(path)


def test_ndcg_linear_gain():
    judgments = {"a": 2, "b": 1, "c": 0}
    assert ndcg_at_k(["a", "b"], judgments) == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["b", "a"], judgments) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["x"], judgments) == 0.0


def test_recall():
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 2, "c": 0}, 2) == 0.5


def test_evaluate_averages_over_judged_queries():
    queries = {"q1": "one", "q2": "two", "q3": "unjudged"}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    runs = {"one": ["a"], "two": ["x"]}
    result = evaluate(lambda text: runs[text], queries, qrels)
    assert result["ndcg@10"] == pytest.approx(0.5)
    assert result["queries"] == 2


def test_evaluate_hands_back_each_judged_querys_ndcg():
    queries = {"q1": "one", "q2": "two", "q3": "unjudged"}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    per_query: dict[str, float] = {}
    evaluate(lambda text: {"one": ["a"], "two": ["x", "b"]}[text], queries, qrels, per_query)
    assert per_query == {"q1": pytest.approx(1.0), "q2": pytest.approx(1 / math.log2(3))}


def test_hybrid_margin_is_over_the_better_single_mode_with_its_paired_standard_error():
    from semsearch.query.evaluation import hybrid_margin

    per_query = {"keyword": {"q1": 0.2, "q2": 0.4, "q3": 0.0, "q4": 0.6},  # mean 0.3
                 "semantic": {"q1": 0.5, "q2": 0.5, "q3": 0.5, "q4": 0.5},  # mean 0.5: the better one
                 "hybrid": {"q1": 0.6, "q2": 0.4, "q3": 0.7, "q4": 0.5}}
    margin = hybrid_margin(per_query)
    differences = [0.1, -0.1, 0.2, 0.0]  # hybrid - semantic, per query
    mean = sum(differences) / 4
    assert margin["best_single_mode"] == "semantic" and margin["queries"] == 4
    assert margin["margin"] == pytest.approx(mean)
    # The sample variance (n - 1), over n: the standard error of a mean of paired differences.
    assert margin["standard_error"] == pytest.approx(math.sqrt(sum((d - mean) ** 2 for d in differences) / 3 / 4))
    # Below the better mode: a negative margin, whatever the worse mode did.
    per_query["hybrid"] = {"q1": 0.4, "q2": 0.4, "q3": 0.4, "q4": 0.4}
    assert hybrid_margin(per_query)["margin"] == pytest.approx(-0.1)


def test_hybrid_margin_needs_all_three_modes_on_shared_queries():
    from semsearch.query.evaluation import hybrid_margin

    assert hybrid_margin({"hybrid": {"q1": 1.0}, "semantic": {"q1": 0.5}}) is None
    assert hybrid_margin({"hybrid": {"q1": 1.0}, "keyword": {}, "semantic": {"q1": 0.5}}) is None
    # Only the queries all three answered count; one query has a margin and no standard error.
    one = hybrid_margin({"hybrid": {"q1": 1.0, "q2": 0.0}, "keyword": {"q1": 0.5}, "semantic": {"q1": 0.25, "q3": 1}})
    assert one == {"best_single_mode": "keyword", "margin": 0.5, "standard_error": None, "queries": 1}


def test_eval_says_whether_a_loss_is_beyond_the_draw_of_the_queries():
    from semsearch.cli.commands import margin_lines

    gain = {"best_single_mode": "semantic", "margin": 0.0212, "standard_error": 0.0104, "queries": 40}
    assert margin_lines(gain, tuning=False) == [
        "hybrid vs semantic (the better single mode): +0.0212 nDCG@10, standard error 0.0104 (40 queries)"]
    noise = {"best_single_mode": "keyword", "margin": -0.0109, "standard_error": 0.0187, "queries": 200}
    assert "more judged queries would tell" in margin_lines(noise, tuning=False)[1]
    real = {"best_single_mode": "keyword", "margin": -0.0368, "standard_error": 0.0162, "queries": 307}
    assert margin_lines(real, tuning=False)[1].endswith("--tune tries other fusions on them.")
    assert "--tune" not in margin_lines(real, tuning=True)[1]  # its results follow
    # A margin that rounds to zero is not a loss; one query has no standard error.
    assert len(margin_lines({**noise, "margin": -0.00001}, tuning=False)) == 1
    assert margin_lines({**real, "standard_error": None, "queries": 1}, tuning=False)[0].endswith("(1 query)")


def test_candidate_health_counts_empty_and_short_lists_and_keyword_evidence():
    from semsearch.query.evaluation import candidate_health
    from semsearch.query.fusion import Ranked

    many = [Ranked(f"d{i}", 1.0) for i in range(20)]
    lists = {"q1": {"keyword": [], "keyword_any": many, "semantic": many, "documents": 1000},
             "q2": {"keyword": many[:3], "keyword_any": many[:5], "semantic": many, "documents": 1000},
             "q3": {"keyword": many, "keyword_any": many, "semantic": many, "documents": 1000,
                    "keyword_phrase": many[:2]}}
    lists["q2"]["keyword_phrase"] = []  # asked for, none found
    health = candidate_health(lists, window=20)
    assert health["queries"] == 3 and health["short_below"] == 10
    assert health["lists"]["keyword"] == {"empty": 1, "short": 1, "median": 3}
    assert health["lists"]["keyword_any"] == {"empty": 0, "short": 1, "median": 20}
    assert health["lists"]["semantic"] == {"empty": 0, "short": 0, "median": 20}
    assert health["keyword_evidence"] == {"fallback": 1, "exhaustive": 1, "strict": 1}
    # Phrase matches are no retriever of their own: how many queries had them, not how often they were empty.
    assert "keyword_phrase" not in health["lists"] and health["with_phrase_matches"] == 1


def test_candidate_health_counts_the_queries_fused_by_score():
    from semsearch.query.evaluation import candidate_health
    from semsearch.query.fusion import Ranked

    bunched = [Ranked(f"d{i}", 20.0 - 0.1 * i) for i in range(100)]
    standout = [Ranked("top", 60.0)] + bunched[1:]
    semantic = [Ranked(f"s{i}", 0.9 - 0.001 * i) for i in range(100)]
    lists = {"strict": {"keyword": standout[:5], "keyword_any": standout, "semantic": semantic, "documents": 10**6},
             "fallback": {"keyword": [], "keyword_any": standout, "semantic": semantic, "documents": 10**6},
             "bunched": {"keyword": [], "keyword_any": bunched, "semantic": semantic, "documents": 10**6},
             "rare": {"keyword": [], "keyword_any": standout[:60], "semantic": semantic, "documents": 10**6}}
    health = candidate_health(lists, window=100)
    assert health["keyword_evidence"] == {"strict": 1, "fallback": 2, "exhaustive": 1}
    assert health["fused_for_standout"] == 2  # not the bunched scores, nor the rare terms (EXHAUSTIVE keeps ranks)
    assert health["fused_by_score"] == 2  # every reason: here the standouts alone
    assert health["fused_for_dense_lead"] == 0  # kNN's first is 0.001 ahead of its second: no lead
    leading = [Ranked("s-top", 0.99)] + semantic[1:]
    lists = {name: {**per_query, "semantic": leading} for name, per_query in lists.items()}
    health = candidate_health(lists, window=100)
    # Only the bunched query: the standing-out ones are fused by score for BM25, the rare terms keep ranks.
    assert health["fused_for_standout"] == 2 and health["fused_for_dense_lead"] == 1
    assert health["fused_by_score"] == 3  # the standouts and the dense lead
    assert health["fused_as_question"] == 0
    # Asked as questions, the standing-out and the bunched query alike are fused as questions; rare terms keep ranks.
    health = candidate_health({name: {**per_query, "question": True} for name, per_query in lists.items()}, 100)
    assert health["fused_as_question"] == 3
    assert health["fused_for_standout"] == 0 and health["fused_for_dense_lead"] == 0
    assert health["fused_by_score"] == 3  # the questions
    assert "question" not in health["lists"]


def test_candidate_health_counts_the_queries_fused_for_a_small_index():
    from semsearch.query.evaluation import candidate_health
    from semsearch.query.fusion import SMALL_INDEX_DOCUMENTS, Ranked

    keyword = [Ranked(f"d{i}", 20.0 - 0.1 * i) for i in range(40)]  # 40 matches: never rare in 499 documents
    semantic = [Ranked(f"d{i}", 0.9 - 0.001 * i) for i in range(100)]
    query = {"keyword": keyword[:5], "keyword_any": keyword, "semantic": semantic, "keyword_phrase": keyword[:2]}
    few, many = SMALL_INDEX_DOCUMENTS - 1, SMALL_INDEX_DOCUMENTS
    lists = {"small": {**query, "documents": few}, "large": {**query, "documents": many},
             "small question": {**query, "documents": few, "question": True}}
    health = candidate_health(lists, window=100)
    assert health["keyword_evidence"] == {"strict": 3}
    assert health["fused_for_small_index"] == 1 and health["fused_as_question"] == 1
    assert health["fused_for_subject"] == 0  # terms unknown: never counted as one term
    # Searched for one term that BM25's best match holds throughout (its score near 2.2 × idf): SUBJECT instead.
    idf = math.log(1 + (few - 40 + 0.5) / (40 + 0.5))
    held = [Ranked(f"d{i}", 2.2 * idf * (0.95 if i == 0 else 0.8 - 0.005 * i)) for i in range(40)]
    lists["small one term"] = {**query, "keyword_any": held, "keyword": held[:5], "documents": few, "terms": 1}
    health = candidate_health(lists, window=100)
    assert health["fused_for_subject"] == 1 and health["fused_for_small_index"] == 1
    assert health["fused_for_long_documents"] == 0
    # The small index's own query over documents of 747 terms on average (pages): LONG_DOCUMENTS instead.
    lists["small long"] = {**query, "documents": few, "document_terms": 747.0}
    health = candidate_health(lists, window=100)
    assert health["fused_for_long_documents"] == 1 and health["fused_for_small_index"] == 1
    assert health["fused_for_short_documents"] == 0
    # Over definitions of 24 terms on average: SHORT_DOCUMENTS.
    lists["small short"] = {**query, "documents": few, "document_terms": 24.0}
    health = candidate_health(lists, window=100)
    assert health["fused_for_short_documents"] == 1 and health["fused_for_small_index"] == 1
    reasons = ("fused_for_standout", "fused_for_dense_lead", "fused_as_question", "fused_for_small_index",
               "fused_for_subject", "fused_for_long_documents", "fused_for_short_documents")
    assert health["fused_by_score"] == sum(health[key] for key in reasons)
    assert "terms" not in health["lists"] and "document_terms" not in health["lists"]
    # The small index's phrase matches are not weighted up; the large index's and the question's lists are counted.
    assert health["with_phrase_matches"] == 2
    # No query above searches several known terms in the small index: no rare strict matches weighted up. One of
    # three terms there, whose 5 strict matches are 1% of 499 documents, has them weighted up (RARE_STRICT).
    assert health["with_rare_strict_matches"] == 0
    lists["small three terms"] = {**query, "documents": few, "terms": 3}
    health = candidate_health(lists, window=100)
    assert health["with_rare_strict_matches"] == 1 and health["with_phrase_matches"] == 2


def test_eval_ranks_each_mode_from_the_candidate_lists_as_the_search_would():
    from semsearch.query.evaluation import ranked_from_candidates
    from semsearch.query.fusion import Ranked, fuse_hybrid
    from semsearch.query.plan import DEFAULT_FUSION

    def ranked(prefix, count):
        return [Ranked(f"{prefix}{i}", float(count - i)) for i in range(count)]

    lists = {"keyword": ranked("a", 150)[:30], "keyword_any": ranked("a", 150), "semantic": ranked("s", 150),
             "documents": 5000, "question": False, "terms": 3, "document_terms": None}
    hybrid = ranked_from_candidates(lists, "hybrid", DEFAULT_FUSION, 150)
    # Hybrid: the client's fusion of every list, its top 100 (what eval scores), at any window.
    assert hybrid == [f.id for f in fuse_hybrid(lists, DEFAULT_FUSION, 150)][:100] and len(hybrid) == 100
    assert {i[0] for i in hybrid} == {"a", "s"}  # both sides fused
    # A single mode's search asks what its candidate request asks only when the window is the 100 scored.
    at_100 = {**lists, "keyword_any": lists["keyword_any"][:100], "semantic": lists["semantic"][:100]}
    assert ranked_from_candidates(at_100, "keyword", DEFAULT_FUSION, 100) == [f"a{i}" for i in range(100)]
    assert ranked_from_candidates(at_100, "semantic", DEFAULT_FUSION, 100) == [f"s{i}" for i in range(100)]
    assert ranked_from_candidates({**at_100, "keyword_any": []}, "keyword", DEFAULT_FUSION, 100) == []
    with pytest.raises(ValueError, match="not the semantic search's top 100"):
        ranked_from_candidates(lists, "semantic", DEFAULT_FUSION, 150)


@pytest.mark.parametrize("server_side,fusion,backend,on_client", [
    (None, None, "opensearch", True),  # the default fusion adapts per query: only the client can
    (None, "rrf", "opensearch", False),  # plain RRF: the cluster's hybrid query is tried first
    (False, "rrf", "opensearch", True),
    (True, "rrf", "opensearch", False),
    (None, "zscore-weighted", "opensearch", True),  # weights the server cannot apply
    (True, "zscore-weighted", "opensearch", False),  # insisted on and impossible: the search says why, eval searches
    (None, "rrf", "elasticsearch", False),  # the rrf retriever, where licensed
    (None, "minmax", "elasticsearch", True),  # Elasticsearch's linear retriever needs an Enterprise licence
])
def test_a_searcher_says_whether_it_fuses_an_index_s_hybrid_searches_itself(server_side, fusion, backend, on_client):
    from semsearch import FusionConfig, Searcher
    from semsearch.index.manage import IndexInfo

    info = IndexInfo(name="docs", text_fields=["text"], vector_field="embedding", fingerprint={}, dimension=3,
                     backend=backend)
    chosen = {None: None, "rrf": FusionConfig("rrf"), "minmax": FusionConfig("minmax"),
              "zscore-weighted": FusionConfig("zscore", {"keyword": 0.3, "semantic": 0.7})}[fusion]
    searcher = Searcher(client=object(), encoder=object(), server_side=server_side)
    assert searcher.fuses_on_client(info, chosen) is on_client


@pytest.mark.parametrize("options,on_client,searched", [
    ([], True, []),  # the default: every mode from the candidate lists
    (["--fusion", "rrf"], False, ["hybrid"]),  # fused by the cluster: hybrid is searched
    (["--window", "150"], True, ["keyword", "semantic"]),  # a deeper kNN request than the single mode's
    (["--mode", "keyword"], True, ["keyword"]),  # no hybrid, no tuning: no candidate lists to rank from
])
def test_eval_searches_only_the_modes_its_candidate_lists_cannot_give(tmp_path, monkeypatch, options, on_client,
                                                                       searched):
    import json

    from click.testing import CliRunner

    import semsearch.query.search as search_module
    from semsearch.cli.commands import main
    from semsearch.index.manage import IndexInfo
    from semsearch.query.fusion import Ranked
    from semsearch.query.plan import DEFAULT_FUSION, Hit

    documents = [f"d{i}" for i in range(120)]
    lists = {"keyword": [Ranked(d, 5.0 - i / 100) for i, d in enumerate(documents[:20])],
             "keyword_any": [Ranked(d, 5.0 - i / 100) for i, d in enumerate(documents)],
             "semantic": [Ranked(d, 0.9 - i / 1000) for i, d in enumerate(reversed(documents))],
             "documents": 5000, "question": False, "terms": 2, "document_terms": None}
    calls: list[str] = []

    class Searcher:  # what evaluate_command asks of semsearch's Searcher
        window = 100

        def __init__(self, settings=None):
            pass

        def index_info(self, index):
            return IndexInfo(name=index, text_fields=["text"], vector_field="embedding", fingerprint={}, dimension=3)

        def fusion_for(self, info, fusion=None):
            return fusion or DEFAULT_FUSION

        def fuses_on_client(self, info, fusion=None):
            return on_client

        def candidates(self, text, *, index, window):
            return {name: value[:window] if isinstance(value, list) else value for name, value in lists.items()}

        def search(self, text, *, index, k, mode, fusion, window, source):
            calls.append(mode)
            return [Hit(r.id, r.score, {}, {}) for r in lists["keyword_any" if mode == "keyword" else "semantic"][:k]]

    monkeypatch.setattr(search_module, "Searcher", Searcher)
    queries, qrels = tmp_path / "q.jsonl", tmp_path / "qrels.tsv"
    queries.write_text('{"_id": "q1", "text": "lamp lighthouse"}\n{"_id": "q2", "text": "keeper"}\n')
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq2\td119\t1\n")
    result = CliRunner().invoke(main, ["eval", "--index", "docs", "--queries", str(queries), "--qrels", str(qrels),
                                       "--json", *options])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert sorted(set(calls)) == searched and all(calls.count(mode) == 2 for mode in searched)  # once per query
    assert report["keyword"]["ndcg@10"] == 0.5  # d0 first for the one, d119 (its last) beyond the top 10 for the other
    if "--mode" not in options:
        assert report["semantic"]["ndcg@10"] == 0.5 and "hybrid" in report and report["candidates"]["queries"] == 2
