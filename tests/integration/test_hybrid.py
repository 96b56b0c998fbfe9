"""Hybrid search on the real node: fusion, filters, paging, explain, highlights, async parity,
server-side vs client-side fusion, the candidate searches (ids from doc values, the stored-_id fallback,
sources fetched for the final page only) and the search command, over one small corpus written here.

The corpus is ingested once for the module through the real command line (in-process encoding).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import uuid

import pytest

from semsearch import AsyncSearcher, ConfigurationError, FusionConfig, Searcher
from semsearch.query.fusion import (EXHAUSTIVE, KEYWORD_ANY, PHRASE_WEIGHT_FACTOR, RARE_MATCH_FRACTION, SHORT_DOCUMENTS,
                                    SHORT_DOCUMENTS_WEIGHT_FACTOR, STRICT, adapt, fuse_hybrid, fusion_choice)
from semsearch.query.plan import DEFAULT_FUSION, DEFAULT_WINDOW

from .conftest import run_cli

# --- the corpus ----------------------------------------------------------------------------------------

TOPICS = {
    "astronomy": (
        ["The Andromeda galaxy", "A red dwarf star", "The rings of Saturn", "The tail of a comet",
         "The lunar surface", "A distant exoplanet"],
        ["was photographed through a large telescope at the mountain observatory",
         "is studied by astronomers who measure its light and motion",
         "can be seen in the night sky on clear winter evenings"],
    ),
    "cooking": (
        ["A slow braised beef stew", "Fresh tomato basil pasta", "A lemon drizzle cake", "Spicy vegetable curry",
         "Roasted garlic soup", "A crispy potato gratin"],
        ["is simmered gently in a heavy pot until the flavours blend",
         "is a weeknight recipe that needs only a few pantry ingredients",
         "tastes best when served warm with crusty bread"],
    ),
    "sports": (
        ["The national football team", "A marathon runner", "The tennis champion", "A professional cyclist",
         "The basketball coach", "An Olympic swimmer"],
        ["trained hard for months before the championship final",
         "won the title after a dramatic comeback in the last minutes",
         "talked to reporters about fitness, tactics and the season ahead"],
    ),
    "music": (
        ["The string quartet", "A jazz pianist", "The symphony orchestra", "A folk singer",
         "The rock band", "A church organist"],
        ["performed a programme of new compositions in the concert hall",
         "recorded an album of improvised pieces over one weekend",
         "rehearsed every evening before the sold out tour"],
    ),
    "computing": (
        ["The database server", "A compiler for a new language", "The web browser", "A distributed file system",
         "The operating system kernel", "A machine learning library"],
        ["was rewritten to reduce memory use and latency",
         "crashed after a software update corrupted its configuration",
         "is maintained by volunteers who review every patch"],
    ),
    "gardening": (
        ["The rose bushes", "A vegetable patch", "The apple orchard", "A herb garden",
         "The greenhouse tomatoes", "A bed of tulips"],
        ["need regular watering during the dry summer months",
         "were pruned in early spring to encourage new growth",
         "were protected from slugs and aphids without pesticides"],
    ),
}
# Only five documents, years 1850-1854 (every other document is from 1990 on): restrictive filters.
HERALDRY = [
    "A lion rampant in gold on a red shield is among the oldest heraldic charges.",
    "The chevron and the bend are ordinaries that divide a coat of arms into fields.",
    "Tinctures in heraldry are metals, colours and furs such as ermine and vair.",
    "A crest sits above the helm, and supporters stand on either side of the escutcheon.",
    "Blazon is the formal language heralds use to describe a coat of arms.",
]
# Close in meaning to "lighthouse keeper" without a word of it.
BEACON = [
    ("The beacon tower on the headland", "Its attendant lived alone in the tower on the rocky island and lit "
     "the great lamp every evening so that passing ships would not run aground."),
    ("Guardian of the coastal light", "He climbed the spiral stairs of the tall coastal tower each night to "
     "tend the lantern that warned sailors away from the reef."),
    ("The foghorn station", "On misty nights the watchman sounded the foghorn and polished the lens that "
     "guided fishing boats into the harbour."),
    ("Life at the sea light", "Tending a remote signal light meant long lonely winters, storms battering the "
     "tower and supply boats that came once a month."),
    ("The lamp on the cliff", "The woman who looked after the lamp on the cliff logged every passing vessel "
     "and trimmed the wick before dusk."),
    ("Shipwreck on the reef", "Before the warning light was built on the point, dozens of sailing ships were "
     "wrecked on the hidden reef in winter gales."),
    ("Coastal navigation aids", "Towers with revolving lamps, bell buoys and foghorns helped sailors find "
     "their way along the dangerous rocky coast."),
    ("The last attendant of the beacon", "When the beacon was automated, its final caretaker rowed ashore "
     "after thirty years of nightly watches over the sea."),
    ("Island light station", "The light station on the island had a small cottage, a store of oil for the "
     "lantern and a boat landing below the tower."),
    ("A stormy watch", "All night the caretaker kept the lantern burning while waves broke over the gallery "
     "of the tower on the rocks."),
]
SPECIAL = [
    # Keyword-only for "lighthouse keeper": the phrase in passing, in a text about something else entirely.
    {"_id": "kw-only", "title": "Rye bread recipe", "category": "cooking", "year": 2011,
     "text": "Mix rye flour, honey, caraway seeds and a lively sourdough starter, knead briefly, proof the dough "
             "overnight and bake in a hot cast iron pot. Lighthouse keeper."},
    # A long text that mentions the phrase once: the weakest BM25 match.
    {"_id": "kw-travel", "title": "Island day trip", "category": "travel", "year": 2021,
     "text": "Morning ferry to the island, a guided walk past old stone cottages, lunch of grilled fish at the "
             "harbour cafe, the small museum of local crafts, an afternoon swim at the sandy bay, an evening "
             "talk by a lighthouse keeper in the village hall and the late boat back to the mainland."},
    # Found by both retrievers.
    {"_id": "lighthouse-history", "title": "A historic profession", "category": "maritime", "year": 2003,
     "text": "A lighthouse keeper tended the lamp and the lens, and kept the light burning from dusk to dawn "
             "for passing ships."},
    # Rare exact tokens: only BM25 matches part numbers.
    {"_id": "part-qx7734", "title": "Spare parts ledger", "category": "computing", "year": 2014,
     "text": "Replacement fan assembly QX7734 was restocked at the warehouse together with two power supplies."},
]


def corpus() -> list[dict]:
    docs = []
    for c, (category, (subjects, predicates)) in enumerate(TOPICS.items()):
        for s, subject in enumerate(subjects):
            for p, predicate in enumerate(predicates):
                n = s * len(predicates) + p
                docs.append({"_id": f"{category}-{n:02d}", "title": subject, "text": f"{subject} {predicate}.",
                             "category": category, "year": 1990 + (n * 7 + c * 3) % 34})
    for n, text in enumerate(HERALDRY):
        docs.append({"_id": f"heraldry-{n}", "title": f"Heraldry note {n + 1}", "text": text,
                     "category": "heraldry", "year": 1850 + n})
    for n, (title, text) in enumerate(BEACON):
        docs.append({"_id": f"beacon-{n}", "title": title, "text": text, "category": "maritime",
                     "year": 1995 + 3 * n})
    return docs + SPECIAL


DOCS = corpus()
BY_ID = {doc["_id"]: doc for doc in DOCS}
HERALDRY_IDS = {f"heraldry-{n}" for n in range(len(HERALDRY))}
MODES = ("keyword", "semantic", "hybrid")
SERVER_CAPABLE = (FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}), FusionConfig("rrf"))
QUERIES = ("lighthouse keeper", "telescope observatory", "spicy vegetable curry recipe",
           "football championship final comeback", "software update crashed the server")


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def ingest_in_process(path, name: str, cwd) -> subprocess.CompletedProcess:
    """`semsearch ingest` in a subprocess, encoding in-process: the queue is switched off explicitly."""
    env = {key: value for key, value in os.environ.items() if key != "SEMSEARCH_BROKER_URL"}
    return subprocess.run([sys.executable, "-m", "semsearch.cli", "ingest", str(path), "--index", name],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def corpus_index(services, tmp_path_factory):
    """The corpus above, ingested once through the command line."""
    name = f"test_hybrid_{uuid.uuid4().hex[:10]}"
    workdir = tmp_path_factory.mktemp("hybrid")
    path = workdir / "corpus.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS), encoding="utf-8")
    try:
        result = ingest_in_process(path, name, workdir)
        assert result.returncode == 0, result.stderr
        assert f"indexed {len(DOCS)} of {len(DOCS)} documents" in result.stderr, result.stderr
        assert "ingest queue" not in result.stderr  # encoded in-process, not through the workers
        services.indices.refresh(index=name)
        assert services.count(index=name)["count"] == len(DOCS)
        yield name
    finally:
        services.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def searcher(corpus_index, encoder):
    return Searcher(encoder=encoder)


def search(searcher, corpus_index, text, **kwargs):
    return searcher.search(text, index=corpus_index, **kwargs)


# --- 1. fusion ---------------------------------------------------------------------------------------------


def assert_well_formed(hits, k):
    assert len(hits) == k
    assert len(set(ids(hits))) == k
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:])), [h.score for h in hits]
    for hit in hits:
        assert set(hit.contributions) == {"keyword", "semantic"}
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)


@pytest.mark.parametrize("fusion", [FusionConfig("rrf"), FusionConfig("minmax"), FusionConfig("zscore")],
                         ids=lambda f: f.method)
def test_each_fusion_finds_keyword_only_and_semantic_only_documents(searcher, corpus_index, fusion):
    hits = search(searcher, corpus_index, "lighthouse keeper", k=10, window=10, fusion=fusion, explain=True,
                  server_side=False)
    assert_well_formed(hits, 10)
    by_id = {h.id: h for h in hits}
    # The rye bread recipe: BM25 finds the phrase, its meaning is far from lighthouses.
    assert "kw-only" in by_id, ids(hits)
    kw_only = by_id["kw-only"].explanation
    assert kw_only["keyword"]["rank"] is not None and kw_only["semantic"]["rank"] is None
    # A beacon tower's attendant: no word of the query, the same meaning.
    assert "beacon-1" in by_id, ids(hits)
    beacon = by_id["beacon-1"].explanation
    assert beacon["semantic"]["rank"] is not None and beacon["keyword"]["rank"] is None
    # Found by both: first whatever the fusion.
    assert hits[0].id == "lighthouse-history"


def test_keyword_only_and_semantic_only_really_are(searcher, corpus_index):
    keyword = ids(search(searcher, corpus_index, "lighthouse keeper", k=50, mode="keyword"))
    semantic = ids(search(searcher, corpus_index, "lighthouse keeper", k=10, mode="semantic"))
    assert "kw-only" in keyword and "kw-only" not in semantic
    assert "beacon-1" in semantic and "beacon-1" not in keyword


@pytest.mark.parametrize("fusion", [None, FusionConfig("rrf"), FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}),
                                    FusionConfig("zscore", {"keyword": 0.5, "semantic": 1.0})],
                         ids=["default", "rrf", "minmax", "zscore"])
@pytest.mark.parametrize("query", QUERIES[1:3])
def test_fusion_returns_k_sorted_hits_whose_contributions_add_up(searcher, corpus_index, fusion, query):
    assert_well_formed(search(searcher, corpus_index, query, k=12, fusion=fusion, server_side=False), 12)


def test_a_rare_exact_token_is_found_first_in_every_mode(searcher, corpus_index):
    for mode in MODES:
        hits = search(searcher, corpus_index, "QX7734", k=5, mode=mode)
        assert hits and hits[0].id == "part-qx7734", (mode, ids(hits))


@pytest.mark.parametrize("fusion", SERVER_CAPABLE, ids=lambda f: f.method)
def test_contributions_add_up_on_the_client_and_are_absent_from_the_server(searcher, corpus_index, fusion):
    # Hit documents it: fused on the client, the contributions add up to the score; the server's
    # pipeline returns fused scores only, so its hits carry none (and no explanation).
    local = search(searcher, corpus_index, "lighthouse keeper", k=10, fusion=fusion, server_side=False)
    assert len(local) == 10
    for hit in local:
        assert set(hit.contributions) == {"keyword", "semantic"}, hit
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)
    # server_side=None: the searcher picks the server's pipeline here (neural-search is installed).
    server = search(searcher, corpus_index, "lighthouse keeper", k=10, fusion=fusion)
    assert len(server) == 10
    assert ids(server) == ids(local)
    for hit in server:
        assert hit.contributions == {}, hit
        assert hit.explanation is None
        assert hit.score > 0


# --- 2. filters ----------------------------------------------------------------------------------------------

ASTRONOMY = {"term": {"category.keyword": "astronomy"}}
RECENT = {"range": {"year": {"gte": 2000, "lte": 2010}}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("filters", "check"), [
    (ASTRONOMY, lambda s: s["category"] == "astronomy"),
    (RECENT, lambda s: 2000 <= s["year"] <= 2010),
    ([ASTRONOMY, RECENT], lambda s: s["category"] == "astronomy" and 2000 <= s["year"] <= 2010),
], ids=["term", "range", "both"])
def test_every_hit_satisfies_the_filter(searcher, corpus_index, mode, filters, check):
    hits = search(searcher, corpus_index, "telescope night sky", k=10, mode=mode, filters=filters)
    assert hits
    for hit in hits:
        assert check(BY_ID[hit.id]), (hit.id, BY_ID[hit.id])
        assert check(hit.source)


def test_unfiltered_query_would_reach_outside_the_filter(searcher, corpus_index):
    # The filter tests above mean something: without a filter, other categories and years come back.
    hits = search(searcher, corpus_index, "telescope night sky", k=30, mode="semantic")
    assert {BY_ID[h.id]["category"] for h in hits} != {"astronomy"}
    assert any(not 2000 <= BY_ID[h.id]["year"] <= 2010 for h in hits)


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
@pytest.mark.parametrize("filters", [{"term": {"category.keyword": "heraldry"}},
                                     {"range": {"year": {"lte": 1900}}}], ids=["term", "range"])
def test_a_restrictive_filter_still_fills_the_page(searcher, corpus_index, mode, filters):
    # Five documents match, none of them about the query: a post-filter on the query's nearest
    # neighbours would return nothing; filtering during the kNN search returns all five.
    query = "spicy vegetable curry recipe"
    nearest = ids(search(searcher, corpus_index, query, k=20, mode="semantic"))
    assert not HERALDRY_IDS & set(nearest)
    hits = search(searcher, corpus_index, query, k=5, mode=mode, filters=filters)
    assert len(hits) == 5 and set(ids(hits)) == HERALDRY_IDS
    assert all(hit.source["category"] == "heraldry" for hit in hits)
    more = search(searcher, corpus_index, query, k=10, mode=mode, filters=filters)
    assert len(more) == 5 and set(ids(more)) == HERALDRY_IDS  # never more than match


@pytest.mark.parametrize("fusion", SERVER_CAPABLE, ids=lambda f: f.method)
def test_a_restrictive_filter_fills_the_page_server_side(searcher, corpus_index, fusion):
    hits = search(searcher, corpus_index, "spicy vegetable curry recipe", k=5, server_side=True,
                  fusion=fusion, filters={"term": {"category.keyword": "heraldry"}})
    assert len(hits) == 5 and set(ids(hits)) == HERALDRY_IDS
    assert all(hit.source["category"] == "heraldry" for hit in hits)


# --- 3. paging -----------------------------------------------------------------------------------------------

PAGING_QUERY = "telescope recipe championship album memory watering"  # BM25 matches 36 documents


@pytest.mark.parametrize("mode", MODES)
def test_pages_concatenate_to_one_long_list(searcher, corpus_index, mode):
    full = search(searcher, corpus_index, PAGING_QUERY, k=20, mode=mode)
    assert len(full) == 20
    pages = [search(searcher, corpus_index, PAGING_QUERY, k=5, offset=offset, mode=mode) for offset in (0, 5, 10, 15)]
    assert [len(page) for page in pages] == [5, 5, 5, 5]
    paged = [hit for page in pages for hit in page]
    assert ids(paged) == ids(full)
    assert len(set(ids(paged))) == 20
    assert [h.score for h in paged] == pytest.approx([h.score for h in full])
    assert [h.source for h in paged] == [h.source for h in full]
    assert all(h.source["title"] == BY_ID[h.id]["title"] for h in paged)


@pytest.mark.parametrize("query", [PAGING_QUERY, "lighthouse keeper", "a quiet evening of music"])
def test_semantic_top_k_are_the_nearest_documents(searcher, corpus_index, query):
    # On 127 documents, asking kNN for as many neighbours as there are documents is exhaustive; a small k
    # must give the head of that list (the index's ef_search is 100), else pages disagree with each other.
    exhaustive = search(searcher, corpus_index, query, k=len(DOCS), mode="semantic")
    assert len(exhaustive) == len(DOCS)
    for k in (1, 5):
        top = search(searcher, corpus_index, query, k=k, mode="semantic")
        assert [(h.id, pytest.approx(h.score)) for h in top] == [(h.id, h.score) for h in exhaustive[:k]], k


def test_filtered_hybrid_pages_concatenate(searcher, corpus_index):
    flt = {"range": {"year": {"gte": 1995}}}
    full = search(searcher, corpus_index, "lighthouse keeper", k=12, filters=flt, window=30)
    assert len(full) == 12 and all(BY_ID[h.id]["year"] >= 1995 for h in full)
    pages = [search(searcher, corpus_index, "lighthouse keeper", k=4, offset=o, filters=flt, window=30)
             for o in (0, 4, 8)]
    assert ids([h for page in pages for h in page]) == ids(full)


def test_hybrid_page_beyond_the_window_is_refused(searcher, corpus_index):
    with pytest.raises(ConfigurationError, match="window"):
        search(searcher, corpus_index, PAGING_QUERY, k=5, offset=96)
    with pytest.raises(ConfigurationError, match="window"):
        search(searcher, corpus_index, PAGING_QUERY, k=5, offset=10, window=12)
    with pytest.raises(ConfigurationError, match="window"):
        search(searcher, corpus_index, PAGING_QUERY, k=5, offset=8, window=12, server_side=True,
               fusion=SERVER_CAPABLE[0])
    # The last page that fits is fine, and single-retriever modes page past the window.
    assert len(search(searcher, corpus_index, PAGING_QUERY, k=5, offset=95)) == 5
    assert len(search(searcher, corpus_index, PAGING_QUERY, k=5, offset=110, mode="semantic")) == 5


# --- 4. explain ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["telescope", "lighthouse keeper", "championship final"])
@pytest.mark.parametrize("fusion", [None, FusionConfig("minmax")], ids=["default", "minmax"])
def test_explanation_matches_the_single_mode_searches(searcher, corpus_index, query, fusion):
    window = 30
    hits = search(searcher, corpus_index, query, k=15, window=window, fusion=fusion, explain=True)
    keyword = search(searcher, corpus_index, query, k=window, mode="keyword")
    semantic = search(searcher, corpus_index, query, k=window, mode="semantic")
    single = {name: {h.id: h.score for h in found} for name, found in (("keyword", keyword), ("semantic", semantic))}
    assert len(hits) == 15
    # In this index of 127 short documents (under 50 terms on average), the default fuses "lighthouse keeper", whose
    # keyword matches are rare (3 documents, under 5%), by rank, the matches first; "telescope", whose matches are rare
    # too (6) but which is one term, and "championship final", whose terms 7 documents hold, by z-scores of the
    # any-term list, the keyword side light, as any query that is no question and searches under 500 short documents
    # (rounds 12 and 17), the documents holding it as a phrase not weighted up (those holding both its terms are, as
    # rare strict matches: round 18).
    expected = {"telescope": ("zscore", STRICT, SHORT_DOCUMENTS), "lighthouse keeper": ("rrf", EXHAUSTIVE, None),
                "championship final": ("zscore", STRICT, SHORT_DOCUMENTS)}
    if fusion is None:
        assert (hits.fusion.method, hits.fusion.keyword_evidence, hits.fusion.reason) == expected[query]
    else:
        assert (hits.fusion.method, hits.fusion.keyword_evidence, hits.fusion.reason) == ("minmax", None, None)
    # Explain says what was fused: each hit's rank and raw score in the list fused (the keyword list hits.fusion
    # names, in the order fused); the any-term and kNN lists' raw scores are those of the single-mode searches.
    candidates = searcher.candidates(query, index=corpus_index, window=window)
    adapted = adapt(candidates, fusion or DEFAULT_FUSION, window)
    assert hits.fusion == fusion_choice(adapted)
    fused_lists = {name: adapted.lists[name] for name in ("keyword", "semantic")}
    positions = {name: {h.id: rank for rank, h in enumerate(found, start=1)} for name, found in fused_lists.items()}
    scores = {name: {h.id: h.score for h in found} for name, found in fused_lists.items()}
    by_rank = hits.fusion.method == "rrf"
    phrase_weight = DEFAULT_FUSION.weight("semantic") * PHRASE_WEIGHT_FACTOR
    owns = {"keyword": {}, "semantic": {}}  # each hit's share of each list, its phrase share aside
    for hit in hits:
        parts = hit.explanation
        assert set(parts) == {"keyword", "semantic"}
        assert sum(part["contribution"] for part in parts.values()) == pytest.approx(hit.score)
        assert {n: p["contribution"] for n, p in parts.items()} == pytest.approx(hit.contributions)
        assert any(part["rank"] is not None or part.get("phrase_rank") for part in parts.values())
        for name, part in parts.items():
            phrase_share = 0.0
            if part.get("phrase_rank") is not None:  # a phrase match's share is larger
                phrase_share = (phrase_weight / (DEFAULT_FUSION.rrf_k + part["phrase_rank"]) if by_rank
                                else phrase_weight)
            if part.get("rare_strict_rank") is not None:  # and a rare strict match's (round 18), under score fusion
                phrase_share += hits.fusion.rare_strict_weight
            own = owns[name][hit.id] = part["contribution"] - phrase_share
            assert part["rank"] == positions[name].get(hit.id), (hit.id, name)
            if part["rank"] is None:
                assert part["raw_score"] is None
                if by_rank:
                    assert part["contribution"] == pytest.approx(phrase_share, abs=1e-12)
                continue
            assert part["raw_score"] == pytest.approx(scores[name][hit.id]), (hit.id, name)
            if name == "semantic" or hits.fusion.keyword_list == KEYWORD_ANY:  # the single modes' own lists
                assert part["raw_score"] == pytest.approx(single[name][hit.id]), (hit.id, name)
            if by_rank:  # weighted RRF, each list at the weight hits.fusion gives it
                assert own == pytest.approx(hits.fusion.weights[name] / (adapted.fusion.rrf_k + part["rank"]))
    if fusion is None and by_rank:
        # Rare matches first: every keyword match is on the page before any document only kNN found.
        matched = [hit.explanation["keyword"]["rank"] is not None for hit in hits]
        assert matched == sorted(matched, reverse=True) and matched[0]
    if fusion is None and not by_rank:
        # Few short documents searched: the any-term list at 0.4 x the configured keyword weight beside kNN's 1, no
        # phrase list, each list's share its weight x (raw - mean) / sd over the window's hits (30, under
        # ZSCORE_DEPTH), a hit it lacks at its lowest.
        assert hits.fusion.keyword_list == KEYWORD_ANY and hits.fusion.phrase_matches == 0
        if " " in query:
            assert candidates["keyword_phrase"]  # there were phrase matches to weigh
        assert hits.fusion.weights == {"keyword": DEFAULT_FUSION.weight("keyword") * SHORT_DOCUMENTS_WEIGHT_FACTOR,
                                       "semantic": DEFAULT_FUSION.weight("semantic")}
        for name, fused in fused_lists.items():
            scores = [hit.score for hit in fused]
            mean = sum(scores) / len(scores)
            deviation = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
            z = {hit.id: (hit.score - mean) / deviation for hit in fused}
            lowest = min(z.values())
            for doc_id, own in owns[name].items():
                assert own == pytest.approx(hits.fusion.weights[name] * z.get(doc_id, lowest)), (name, doc_id)
        assert all(hit.explanation["keyword"].get("phrase_rank") is None for hit in hits)
        # Two terms that few of the 127 documents hold together: those are weighted up as rare strict matches (round
        # 18), as heavy as the semantic list; one term has none.
        strict = {hit.id for hit in candidates["keyword"]}
        if " " in query:
            assert 0 < len(strict) <= RARE_MATCH_FRACTION * 127 and hits.fusion.rare_strict_matches == len(strict)
            assert hits.fusion.rare_strict_weight == phrase_weight
            assert all((hit.explanation["keyword"].get("rare_strict_rank") is not None) == (hit.id in strict)
                       for hit in hits)
        else:
            assert hits.fusion.rare_strict_matches == 0
    if fusion is None and query == "lighthouse keeper":
        # The three documents holding it as a phrase are on the page, each weighted up as a place in one more list as
        # heavy as the semantic one (its share above).
        phrase_ranks = [hit.explanation["keyword"].get("phrase_rank") for hit in hits]
        assert sorted(rank for rank in phrase_ranks if rank is not None) == [1, 2, 3]


def test_explanation_in_single_modes(searcher, corpus_index):
    for mode in ("keyword", "semantic"):
        full = search(searcher, corpus_index, PAGING_QUERY, k=10, mode=mode)
        page = search(searcher, corpus_index, PAGING_QUERY, k=5, offset=5, mode=mode, explain=True)
        for rank, hit in enumerate(page, start=6):
            assert hit.explanation == {mode: {"rank": rank, "raw_score": pytest.approx(hit.score),
                                              "contribution": pytest.approx(hit.score)}}
            assert hit.id == full[rank - 1].id


# --- 5. highlights and source --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_keyword_terms_are_highlighted(searcher, corpus_index, mode):
    hits = search(searcher, corpus_index, "telescope observatory", k=10, mode=mode, highlight=True)
    with_term = [h for h in hits if "telescope" in BY_ID[h.id]["text"].lower()]
    assert with_term
    for hit in with_term:
        assert any("<em>telescope</em>" in fragment.lower() for fragment in hit.highlights.get("text", [])), \
            (hit.id, hit.highlights)
    without = search(searcher, corpus_index, "telescope observatory", k=10, mode=mode)
    assert all(h.highlights == {} for h in without)


@pytest.mark.parametrize("mode", MODES)
def test_source_fields(searcher, corpus_index, mode):
    full = search(searcher, corpus_index, "lighthouse keeper", k=10, mode=mode)
    for hit in full:
        assert "embedding" not in hit.source and "passages" not in hit.source
        assert {"title", "text", "category", "year"} <= set(hit.source)
        assert hit.source["title"] == BY_ID[hit.id]["title"]
    titles = search(searcher, corpus_index, "lighthouse keeper", k=10, mode=mode, source=["title"])
    assert ids(titles) == ids(full)
    assert all(hit.source == {"title": BY_ID[hit.id]["title"]} for hit in titles)
    bare = search(searcher, corpus_index, "lighthouse keeper", k=10, mode=mode, source=False)
    assert ids(bare) == ids(full)
    assert all(hit.source == {} for hit in bare)


@pytest.mark.parametrize("mode", MODES)
def test_asking_for_the_vector_field_does_not_return_it(searcher, corpus_index, mode):
    hits = search(searcher, corpus_index, "telescope observatory", k=5, mode=mode, source=["title", "embedding"])
    assert len(hits) == 5
    assert all(hit.source == {"title": BY_ID[hit.id]["title"]} for hit in hits)


BOOKKEEPING = ("semsearch_id", "semsearch_hash")


def stored_source(client, index, doc_id):
    """The document as the node keeps it, less the vectors and semsearch's bookkeeping (what a search returns)."""
    source = client.get(index=index, id=doc_id)["_source"]
    assert "embedding" in source  # the vectors are really there, and really left out of hits
    return {key: value for key, value in source.items() if key not in ("embedding", "passages", *BOOKKEEPING)}


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_hydrated_sources_are_the_documents_real_sources(client, searcher, corpus_index, server_side):
    fusion = SERVER_CAPABLE[0] if server_side else None
    hits = search(searcher, corpus_index, "lighthouse keeper", k=20, fusion=fusion, server_side=server_side)
    assert len(hits) == 20
    for hit in hits:
        expected = stored_source(client, corpus_index, hit.id)
        assert hit.source == expected, hit.id
        # What was ingested: semsearch's id and content hash, stored beside it, are not shown.
        assert client.get(index=corpus_index, id=hit.id)["_source"]["semsearch_id"] == hit.id
        assert expected == {k: v for k, v in BY_ID[hit.id].items() if k != "_id"}
    # The same documents, fields chosen: each hit gets its own document's fields.
    picked = search(searcher, corpus_index, "lighthouse keeper", k=20, fusion=fusion, server_side=server_side,
                    source=["title", "year"])
    assert ids(picked) == ids(hits)
    assert [h.source for h in picked] == [{"title": BY_ID[h.id]["title"], "year": BY_ID[h.id]["year"]}
                                          for h in picked]


@pytest.mark.parametrize("server_side", [False, True], ids=["client", "server"])
def test_highlights_without_sources(searcher, corpus_index, server_side):
    fusion = SERVER_CAPABLE[0] if server_side else None
    hits = search(searcher, corpus_index, "telescope observatory", k=10, fusion=fusion, server_side=server_side,
                  highlight=True, source=False)
    full = search(searcher, corpus_index, "telescope observatory", k=10, fusion=fusion, server_side=server_side,
                  highlight=True)
    assert ids(hits) == ids(full)
    assert all(h.source == {} for h in hits)
    assert [h.highlights for h in hits] == [h.highlights for h in full]
    assert any("<em>telescope</em>" in f.lower() for h in hits for f in h.highlights.get("text", []))


# --- 6. AsyncSearcher parity -------------------------------------------------------------------------------

PARITY_CASES = [
    {"mode": "keyword"},
    {"mode": "semantic"},
    {"mode": "hybrid"},
    {"mode": "hybrid", "fusion": FusionConfig("zscore"), "offset": 5},
    {"mode": "hybrid", "filters": [ASTRONOMY, RECENT]},
    {"mode": "semantic", "filters": {"term": {"category.keyword": "heraldry"}}},
    {"mode": "hybrid", "fusion": SERVER_CAPABLE[0], "server_side": True},
    {"mode": "hybrid", "fusion": SERVER_CAPABLE[1], "server_side": True, "highlight": True, "source": ["title"]},
    {"mode": "hybrid", "fusion": SERVER_CAPABLE[0], "server_side": False, "explain": True},
    {"mode": "hybrid", "highlight": True, "source": ["title", "year"]},
    {"mode": "hybrid", "source": False},
]


def test_async_searcher_gives_the_same_hits(searcher, corpus_index, encoder):
    queries = ("lighthouse keeper", "telescope night sky")
    expected = [search(searcher, corpus_index, q, k=8, **case) for q in queries for case in PARITY_CASES]

    async def run():
        async with AsyncSearcher(encoder=encoder) as asearcher:
            results = []
            for q in queries:
                for case in PARITY_CASES:
                    results.append(await asearcher.search(q, index=corpus_index, k=8, **case))
            concurrent = await asyncio.gather(*(asearcher.search(q, index=corpus_index, k=8) for q in queries))
            return results, concurrent

    got, concurrent = asyncio.run(run())
    for case, sync_hits, async_hits in zip(PARITY_CASES * len(queries), expected, got):
        assert sync_hits, case
        assert ids(async_hits) == ids(sync_hits), case
        assert [h.score for h in async_hits] == pytest.approx([h.score for h in sync_hits]), case
        assert [h.contributions for h in async_hits] == [pytest.approx(h.contributions) for h in sync_hits], case
        assert [h.source for h in async_hits] == [h.source for h in sync_hits], case
        assert [h.highlights for h in async_hits] == [h.highlights for h in sync_hits], case
        if case.get("source", True) is not False:
            assert all(h.source for h in async_hits), case  # hydrated, not left empty
        if case.get("server_side"):
            assert all(h.contributions == {} for h in async_hits), case
        if case.get("highlight"):
            assert any(h.highlights for h in async_hits), case
        if case.get("explain"):
            assert [h.explanation for h in async_hits] == [h.explanation for h in sync_hits]
    for q, hits in zip(queries, concurrent):
        assert ids(hits) == ids(search(searcher, corpus_index, q, k=8))


def test_async_searcher_refuses_what_the_sync_one_refuses(corpus_index, encoder):
    async def run():
        async with AsyncSearcher(encoder=encoder) as asearcher:
            with pytest.raises(ConfigurationError, match="window"):
                await asearcher.search("q", index=corpus_index, k=5, offset=96)
            with pytest.raises(ConfigurationError, match="server-side"):
                await asearcher.search("q", index=corpus_index, server_side=True)

    asyncio.run(run())


# --- 7. server-side vs client-side fusion ------------------------------------------------------------------


def test_neural_search_plugin_is_installed(client):
    # The server-side tests below mean something only with the plugin: fail, never skip, without it.
    components = {p["component"] for p in client.cat.plugins(format="json")}
    assert "opensearch-neural-search" in components, components


# The server's RRF with semsearch's rank constant (20, the default fusion's): OpenSearch 2.19.1 ignores
# combination.rank_constant and honours combination.parameters.rank_constant, where pipeline_body puts it.
RRF_20 = pytest.param(FusionConfig("rrf", rrf_k=20), id="rrf-k20")
# The raw-score sum runs as one bool query: no plugin, no pipeline.
SUM = pytest.param(FusionConfig("sum", {"keyword": 0.05, "semantic": 1.0}), id="sum")


def tied_groups(hits) -> list[set[str]]:
    """The ids of ``hits``, best first, as groups of equal score. Inside a tie the order is no ranking: RRF
    ties whenever two documents hold mirrored ranks (1 and 2 against 2 and 1), and the server then keeps its
    doc-id order (which depends on how the bulk writes interleaved) where the client sorts by id. The last
    group is left out: k may cut a tie at different members on each side."""
    groups: list[tuple[float, set[str]]] = []
    for hit in hits:
        if groups and math.isclose(groups[-1][0], hit.score, rel_tol=1e-6):
            groups[-1][1].add(hit.id)
        else:
            groups.append((hit.score, {hit.id}))
    return [members for _, members in groups[:-1]]


@pytest.mark.parametrize("fusion", [*SERVER_CAPABLE, RRF_20, SUM], ids=lambda f: f.method)
def test_server_side_and_client_side_rank_alike(client, searcher, corpus_index, fusion):
    test_neural_search_plugin_is_installed(client)
    for query in QUERIES:
        for filters in (None, RECENT):
            server = search(searcher, corpus_index, query, k=10, fusion=fusion, filters=filters, server_side=True)
            local = search(searcher, corpus_index, query, k=10, fusion=fusion, filters=filters, server_side=False)
            assert len(server) == len(local) == 10
            assert tied_groups(server) == tied_groups(local), (query, filters, ids(server), ids(local))
            # Normalised weights (and unweighted RRF) put both sides' scores on one scale; the server's
            # min-max gives its lowest hit 0.001 rather than 0.
            assert [h.score for h in server] == pytest.approx([h.score for h in local], abs=2e-3), (query, filters)


def test_server_side_pages_and_highlights(searcher, corpus_index):
    fusion = SERVER_CAPABLE[0]
    full = search(searcher, corpus_index, PAGING_QUERY, k=15, fusion=fusion, server_side=True)
    pages = [search(searcher, corpus_index, PAGING_QUERY, k=5, offset=o, fusion=fusion, server_side=True)
             for o in (0, 5, 10)]
    assert ids([h for page in pages for h in page]) == ids(full)
    hits = search(searcher, corpus_index, "telescope observatory", k=5, fusion=fusion, server_side=True,
                  highlight=True, source=["title"])
    assert any("<em>telescope</em>" in f.lower() for h in hits for f in h.highlights.get("text", []))
    assert all(set(h.source) == {"title"} for h in hits)


@pytest.mark.parametrize("fusion", [None, FusionConfig("rrf", {"keyword": 0.5, "semantic": 1.0}),
                                    FusionConfig("zscore")], ids=["default", "weighted-rrf", "zscore"])
def test_forcing_the_server_with_a_fusion_it_cannot_run_is_refused(searcher, corpus_index, fusion):
    with pytest.raises(ConfigurationError, match="server-side"):
        search(searcher, corpus_index, "lighthouse keeper", fusion=fusion, server_side=True)
    # Left to the searcher, it fuses on the client.
    hits = search(searcher, corpus_index, "lighthouse keeper", k=5, fusion=fusion)
    assert len(hits) == 5 and all(set(h.contributions) == {"keyword", "semantic"} for h in hits)


def test_explain_cannot_run_server_side(searcher, corpus_index):
    with pytest.raises(ConfigurationError, match="explain"):
        search(searcher, corpus_index, "lighthouse keeper", fusion=SERVER_CAPABLE[0], explain=True, server_side=True)
    hits = search(searcher, corpus_index, "lighthouse keeper", k=5, fusion=SERVER_CAPABLE[0], explain=True)
    assert all(h.explanation is not None for h in hits)


def test_searcher_level_server_side_setting(corpus_index, encoder):
    forced = Searcher(encoder=encoder, server_side=True)
    with pytest.raises(ConfigurationError, match="server-side"):
        forced.search("lighthouse keeper", index=corpus_index)  # the default fusion is weighted RRF
    assert len(forced.search("lighthouse keeper", index=corpus_index, k=5, fusion=SERVER_CAPABLE[1])) == 5
    # A per-call False overrides the searcher's True; single-retriever modes never go to the pipeline.
    assert len(forced.search("lighthouse keeper", index=corpus_index, k=5, server_side=False)) == 5
    assert len(forced.search("lighthouse keeper", index=corpus_index, k=5, mode="semantic")) == 5


# --- 8. the search command ------------------------------------------------------------------------------------


def test_search_cli_json(searcher, corpus_index):
    result = run_cli("search", "lighthouse keeper", "--index", corpus_index, "-k", "5", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = search(searcher, corpus_index, "lighthouse keeper", k=5)
    assert [line["id"] for line in lines] == ids(expected)
    assert [line["score"] for line in lines] == pytest.approx([h.score for h in expected])
    for line in lines:
        assert set(line["contributions"]) == {"keyword", "semantic"}
        assert sum(line["contributions"].values()) == pytest.approx(line["score"])
        assert "embedding" not in line["source"] and line["source"]["title"] == BY_ID[line["id"]]["title"]


def test_search_cli_offset_filter_explain(searcher, corpus_index):
    maritime, recent = {"term": {"category.keyword": "maritime"}}, {"range": {"year": {"gte": 2000}}}
    result = run_cli("search", "lighthouse keeper", "--index", corpus_index, "-k", "4", "--offset", "2",
                     "--filter", json.dumps(maritime), "--filter", json.dumps(recent), "--explain", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = search(searcher, corpus_index, "lighthouse keeper", k=4, offset=2, filters=[maritime, recent],
                      explain=True)
    assert len(expected) == 4
    assert [line["id"] for line in lines] == ids(expected)
    for line, hit in zip(lines, expected):
        assert BY_ID[line["id"]]["category"] == "maritime" and BY_ID[line["id"]]["year"] >= 2000
        assert line["score"] == pytest.approx(hit.score)
        assert set(line["explanation"]) == {"keyword", "semantic"}
        for name, part in line["explanation"].items():
            assert part["rank"] == hit.explanation[name]["rank"]
            assert part["contribution"] == pytest.approx(hit.explanation[name]["contribution"])
            assert part["raw_score"] == pytest.approx(hit.explanation[name]["raw_score"])
        assert sum(part["contribution"] for part in line["explanation"].values()) == pytest.approx(line["score"])
        assert "highlights" not in line
        assert line["fusion"] == {**dataclasses.asdict(expected.fusion), "description": expected.fusion.description}
    # In text, one line says it above the hits.
    text = run_cli("search", "lighthouse keeper", "--index", corpus_index, "-k", "4", "--explain")
    assert text.returncode == 0, text.stderr
    unfiltered = search(searcher, corpus_index, "lighthouse keeper", k=4, explain=True)
    assert text.stdout.splitlines()[0] == unfiltered.fusion.description, text.stdout


def test_search_cli_server_side_json(searcher, corpus_index):
    result = run_cli("search", "telescope observatory", "--index", corpus_index, "-k", "5", "--server-side",
                     "--fusion", "minmax", "--keyword-weight", "0.3", "--semantic-weight", "0.7", "--highlight",
                     "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    fusion = FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}, rrf_k=20)
    expected = search(searcher, corpus_index, "telescope observatory", k=5, fusion=fusion, server_side=False)
    assert [line["id"] for line in lines] == ids(expected)
    assert [line["score"] for line in lines] == pytest.approx([h.score for h in expected], abs=2e-3)
    for line in lines:
        assert line["contributions"] == {}  # fused on the server: scores only
        assert line["source"]["title"] == BY_ID[line["id"]]["title"] and "embedding" not in line["source"]
    assert any("<em>telescope</em>" in f.lower() for line in lines for f in line["highlights"].get("text", []))


# --- 9. candidate searches: ids from doc values, the stored-_id fallback, sources of the final page -----------


def record(monkeypatch, target, method: str) -> list:
    """Copies of the request bodies ``target.method`` is called with (the call itself goes through)."""
    calls = []
    real = getattr(target, method)

    def recording(*args, **kwargs):
        calls.append(copy.deepcopy(kwargs["body"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, method, recording)
    return calls


def bodies_of(msearch_lines: list) -> list[dict]:
    return msearch_lines[1::2]


def assert_doc_values_candidates(body, window=100):
    assert body["stored_fields"] == "_none_" and body["docvalue_fields"] == ["semsearch_id"], body.keys()
    assert "_source" not in body and "highlight" not in body
    assert body["size"] == window and body["track_total_hits"] is False


def assert_stored_id_candidates(body, window=100):
    assert "stored_fields" not in body and "docvalue_fields" not in body, body.keys()
    assert body["_source"] is False and "highlight" not in body
    assert body["size"] == window and body["track_total_hits"] is False


def reference_hits(searcher, index, text, fusion, k, offset=0):
    """The fused ranking from each retriever's candidates read by stored _id (Searcher.candidates)."""
    return fuse_hybrid(searcher.candidates(text, index=index), fusion, DEFAULT_WINDOW)[offset:offset + k]


def without_count(bodies):
    """The candidate searches of an _msearch, without the adaptive fusion's count of documents (size 0)."""
    counts = [body for body in bodies if body["size"] == 0]
    assert all(body == {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": []}}} for body in counts)
    return [body for body in bodies if body["size"] != 0]


def test_the_corpus_index_maps_the_id_keyword(client, searcher, corpus_index):
    assert searcher.index_info(corpus_index).id_field == "semsearch_id"
    source = client.get(index=corpus_index, id="beacon-1")["_source"]
    assert source["semsearch_id"] == "beacon-1"


def test_client_side_hybrid_reads_candidates_from_doc_values_and_fetches_the_page_once(
        monkeypatch, client, encoder, corpus_index):
    searcher = Searcher(encoder=encoder)
    msearches = record(monkeypatch, searcher.client, "msearch")
    hits = searcher.search("telescope observatory", index=corpus_index, k=5, highlight=True, server_side=False)
    assert len(hits) == 5
    assert len(msearches) == 2  # the candidates, then the page's sources: no fallback on this index
    candidates = bodies_of(msearches[0])
    # strict keyword, any-term keyword, phrase (two words), kNN, and the count of documents searched
    assert len(candidates) == 5
    for body in without_count(candidates):
        assert_doc_values_candidates(body)
    (fetch,) = bodies_of(msearches[1])
    assert fetch["query"] == {"ids": {"values": ids(hits)}} and fetch["size"] == 5
    assert fetch["_source"] == {"excludes": ["embedding", "passages", "semsearch_hash", "semsearch_id"]} and "highlight" in fetch
    # On the node, such a candidate search really returns no _id and no source: the ids come from doc values.
    answer = client.msearch(body=msearches[0])
    assert answer["responses"][4]["hits"]["total"]["value"] == len(BY_ID)
    assert not answer["responses"][2]["hits"]["hits"]  # no document says "telescope observatory"
    assert all(answer["responses"][n]["hits"]["hits"] for n in (0, 1, 3))
    for item in answer["responses"][:4]:
        for raw in item["hits"]["hits"]:
            assert "_id" not in raw and "_source" not in raw, raw
            assert raw["fields"]["semsearch_id"][0] in BY_ID
    # The same ranking as from candidates read by their stored _id.
    expected = reference_hits(searcher, corpus_index, "telescope observatory", DEFAULT_FUSION, 5)
    assert [(h.id, h.score) for h in hits] == [(f.id, pytest.approx(f.score)) for f in expected]
    assert all(h.source["title"] == BY_ID[h.id]["title"] for h in hits)


def test_nothing_to_fetch_means_no_second_request(monkeypatch, encoder, corpus_index):
    searcher = Searcher(encoder=encoder)
    with_sources = searcher.search("lighthouse keeper", index=corpus_index, k=8, server_side=False)
    msearches = record(monkeypatch, searcher.client, "msearch")
    bare = searcher.search("lighthouse keeper", index=corpus_index, k=8, source=False, server_side=False)
    assert len(msearches) == 1
    assert ids(bare) == ids(with_sources)
    assert [h.score for h in bare] == pytest.approx([h.score for h in with_sources])
    assert all(h.source == {} and h.highlights == {} for h in bare)


def test_server_side_hybrid_reads_doc_values_and_fetches_the_page_once(monkeypatch, encoder, corpus_index):
    searcher = Searcher(encoder=encoder)
    fusion = SERVER_CAPABLE[0]
    searches = record(monkeypatch, searcher.client, "search")
    msearches = record(monkeypatch, searcher.client, "msearch")
    hits = searcher.search("lighthouse keeper", index=corpus_index, k=6, fusion=fusion, server_side=True)
    assert len(hits) == 6
    (hybrid,) = searches
    assert "hybrid" in hybrid["query"]
    assert_doc_values_candidates(hybrid)
    assert len(msearches) == 1  # the page's sources; the candidates came from the hybrid query
    (fetch,) = bodies_of(msearches[0])
    assert fetch["query"] == {"ids": {"values": ids(hits)}}
    assert all(h.source["title"] == BY_ID[h.id]["title"] for h in hits)
    searches.clear()
    msearches.clear()
    bare = searcher.search("lighthouse keeper", index=corpus_index, k=6, fusion=fusion, server_side=True, source=False)
    assert len(searches) == 1 and msearches == []
    assert ids(bare) == ids(hits)


# An index where one document was written by another program: it has its vector but no semsearch_id.
FOREIGN_ID = "foreign-keeper"
FOREIGN_TEXT = ("The keeper of the old lighthouse on the northern cape wrote a diary of storms, wrecks and the "
                "ships he guided past the rocks.")
MIXED_IDS = ([f"beacon-{n}" for n in range(len(BEACON))] + [doc["_id"] for doc in SPECIAL] + sorted(HERALDRY_IDS)
             + [f"astronomy-{n:02d}" for n in range(6)] + [f"cooking-{n:02d}" for n in range(6)])


@pytest.fixture(scope="module")
def mixed_index(services, tmp_path_factory):
    name = f"test_hybrid_mixed_{uuid.uuid4().hex[:10]}"
    workdir = tmp_path_factory.mktemp("hybrid-mixed")
    path = workdir / "corpus.jsonl"
    path.write_text("".join(json.dumps(BY_ID[doc_id]) + "\n" for doc_id in MIXED_IDS), encoding="utf-8")
    try:
        result = ingest_in_process(path, name, workdir)
        assert result.returncode == 0, result.stderr
        vector = services.get(index=name, id="beacon-1")["_source"]["embedding"]
        services.index(index=name, id=FOREIGN_ID, refresh=True,
                       body={"title": "A keeper's diary", "text": FOREIGN_TEXT, "category": "maritime",
                             "year": 1931, "embedding": vector})
        assert services.count(index=name)["count"] == len(MIXED_IDS) + 1
        yield name
    finally:
        services.indices.delete(index=name, ignore_unavailable=True)


def test_the_foreign_document_really_lacks_the_id_keyword(client, encoder, mixed_index):
    assert Searcher(encoder=encoder).index_info(mixed_index).id_field == "semsearch_id"
    source = client.get(index=mixed_index, id=FOREIGN_ID)["_source"]
    assert "semsearch_id" not in source and "semsearch_hash" not in source
    assert client.get(index=mixed_index, id="beacon-1")["_source"]["semsearch_id"] == "beacon-1"
    # The single-retriever modes, which read _id, find it.
    searcher = Searcher(encoder=encoder)
    assert FOREIGN_ID in ids(searcher.search("lighthouse keeper", index=mixed_index, k=10, mode="keyword"))
    assert FOREIGN_ID in ids(searcher.search("lighthouse keeper", index=mixed_index, k=3, mode="semantic"))


@pytest.mark.parametrize("fusion", [DEFAULT_FUSION, FusionConfig("minmax", {"keyword": 0.3, "semantic": 0.7}),
                                    FusionConfig("zscore")], ids=["default", "minmax", "zscore"])
def test_hybrid_falls_back_to_stored_ids_for_a_document_without_the_id_keyword(
        monkeypatch, client, encoder, mixed_index, fusion):
    searcher = Searcher(encoder=encoder)
    msearches = record(monkeypatch, searcher.client, "msearch")
    hits = searcher.search("lighthouse keeper", index=mixed_index, k=10, fusion=fusion, explain=True,
                           server_side=False)
    # Doc values first; a candidate without them: the same searches by stored _id; then the page's sources.
    assert len(msearches) == 3, [list(bodies_of(m)[0]) for m in msearches]
    for body in without_count(bodies_of(msearches[0])):
        assert_doc_values_candidates(body)
    for body in without_count(bodies_of(msearches[1])):
        assert_stored_id_candidates(body)
    (fetch,) = bodies_of(msearches[2])
    assert fetch["query"] == {"ids": {"values": ids(hits)}}
    # Correct hits: the ranking of the candidates read by stored _id, the foreign document among them.
    assert len(hits) == 10 and len(set(ids(hits))) == 10
    expected = reference_hits(searcher, mixed_index, "lighthouse keeper", fusion, 10)
    assert [(h.id, h.score) for h in hits] == [(f.id, pytest.approx(f.score)) for f in expected]
    assert [h.contributions for h in hits] == [pytest.approx(f.contributions) for f in expected]
    by_id = {h.id: h for h in hits}
    assert FOREIGN_ID in by_id, ids(hits)
    foreign = by_id[FOREIGN_ID].explanation
    assert foreign["keyword"]["rank"] is not None and foreign["semantic"]["rank"] is not None
    # Its vector is beacon-1's: the same kNN score.
    semantic = {h.id: h.score for h in searcher.search("lighthouse keeper", index=mixed_index, k=40, mode="semantic")}
    assert foreign["semantic"]["raw_score"] == pytest.approx(semantic[FOREIGN_ID])
    assert semantic[FOREIGN_ID] == pytest.approx(semantic["beacon-1"])
    # Sources are the documents' own, the foreign one included (it has no semsearch fields).
    for hit in hits:
        assert hit.source == stored_source(client, mixed_index, hit.id), hit.id
        assert sum(hit.contributions.values()) == pytest.approx(hit.score)
    assert by_id[FOREIGN_ID].source == {"title": "A keeper's diary", "text": FOREIGN_TEXT, "category": "maritime",
                                        "year": 1931}


def test_fallback_pages_concatenate(encoder, mixed_index):
    searcher = Searcher(encoder=encoder)
    full = searcher.search("lighthouse keeper", index=mixed_index, k=12, server_side=False)
    pages = [searcher.search("lighthouse keeper", index=mixed_index, k=4, offset=o, server_side=False)
             for o in (0, 4, 8)]
    paged = [h for page in pages for h in page]
    assert [len(p) for p in pages] == [4, 4, 4]
    assert ids(paged) == ids(full) and len(set(ids(paged))) == 12
    assert FOREIGN_ID in ids(full)


@pytest.mark.parametrize("fusion", SERVER_CAPABLE, ids=lambda f: f.method)
def test_server_side_falls_back_to_stored_ids_too(monkeypatch, client, encoder, mixed_index, fusion):
    searcher = Searcher(encoder=encoder)
    searches = record(monkeypatch, searcher.client, "search")
    server = searcher.search("lighthouse keeper", index=mixed_index, k=10, fusion=fusion, server_side=True)
    assert len(searches) == 2  # doc values, then stored _id
    assert_doc_values_candidates(searches[0])
    assert_stored_id_candidates(searches[1])
    local = searcher.search("lighthouse keeper", index=mixed_index, k=10, fusion=fusion, server_side=False)
    assert FOREIGN_ID in ids(server)
    assert ids(server) == ids(local)
    assert all(h.contributions == {} for h in server)
    for hit in server:
        assert hit.source == stored_source(client, mixed_index, hit.id), hit.id


def test_async_fallback_gives_the_same_hits(encoder, mixed_index):
    searcher = Searcher(encoder=encoder)
    cases = [{}, {"fusion": SERVER_CAPABLE[0], "server_side": True}, {"highlight": True, "source": ["title"]}]
    expected = [searcher.search("lighthouse keeper", index=mixed_index, k=10, **case) for case in cases]

    async def run():
        async with AsyncSearcher(encoder=encoder) as asearcher:
            return [await asearcher.search("lighthouse keeper", index=mixed_index, k=10, **case) for case in cases]

    for case, sync_hits, async_hits in zip(cases, expected, asyncio.run(run())):
        assert FOREIGN_ID in ids(async_hits), case
        assert ids(async_hits) == ids(sync_hits), case
        assert [h.score for h in async_hits] == pytest.approx([h.score for h in sync_hits]), case
        assert [h.source for h in async_hits] == [h.source for h in sync_hits], case
        assert [h.highlights for h in async_hits] == [h.highlights for h in sync_hits], case
