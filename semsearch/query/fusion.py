"""Combining ranked lists from BM25 and kNN into one (pure functions).

:func:`fuse` does what a :class:`FusionConfig` says (RRF, min-max, z-scores, the raw sum). The default config is
adaptive: :func:`fuse_hybrid` first lets :func:`adapt` choose, per query, from that query's candidate lists alone:

1. which keyword list stands for BM25 (:func:`keyword_evidence`: STRICT, FALLBACK, EXHAUSTIVE or AGREED);
2. for STRICT and FALLBACK, whether to fuse by z-scores instead of ranks, and with what keyword weight
   (:func:`score_fusion_reason`, asked in this order: QUESTION, SUBJECT, LONG_DOCUMENTS, SHORT_DOCUMENTS or
   SMALL_INDEX, STANDOUT, DENSE_LEAD; otherwise RRF);
3. whether documents holding the query as a phrase are weighted up (PHRASE, :func:`fuse_adapted`; not under
   SMALL_INDEX_REASONS), or under SMALL_INDEX_REASONS its rare strict matches (RARE_STRICT).

Each rule's comment below says why it exists; docs/benchmarks.md ("Hybrid on unseen collections", rounds 1–19)
has the measurements behind every constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

FUSION_METHODS = ("rrf", "minmax", "zscore", "sum")


@dataclass(frozen=True)
class Ranked:
    """One hit of one retriever: document id and the retriever's raw score, best first."""

    id: str
    score: float


@dataclass(frozen=True)
class Fused:
    id: str
    score: float
    contributions: dict[str, float]  # per retriever; they add up to ``score``


# The sum's weights when none are given: raw BM25 scores (~5–30) would drown kNN's (0.5–1) at 1:1;
# 0.003 was best on dbpedia-entity on both engines (docs/benchmarks.md).
SUM_DEFAULT_WEIGHTS = {"keyword": 0.003, "semantic": 1.0}


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid mode combines retrievers. ``weights`` maps retriever name → weight; None weighs every
    list 1.0 (the ``sum``: :data:`SUM_DEFAULT_WEIGHTS`).

    ``adaptive`` (given with ``rrf``, as its factors are about ranks): the keyword side adapts to each query
    (:func:`keyword_evidence`): the strict keyword list, the plain one when the strict one is empty, and the keyword
    matches first when they are few; for a query that asks a question (:func:`semsearch.query.question.is_question`),
    that searches few documents (SMALL_INDEX), whose best BM25 match stands out (:func:`keyword_stands_out`), or whose
    best kNN match is far ahead of its second (:func:`dense_leads`), the adaptive side itself switches to z-scores;
    documents holding the query as a phrase are weighted up (:func:`weigh_matches`), except for a query fused
    for a small index, where a query's rare strict matches are instead (:func:`rare_strict_matches`). The default
    fusion is adaptive; it runs on the client only.
    """

    method: str = "rrf"
    weights: Mapping[str, float] | None = None
    rrf_k: int = 60
    adaptive: bool = False

    def weight(self, name: str) -> float:
        if self.weights is None:
            return SUM_DEFAULT_WEIGHTS.get(name, 1.0) if self.method == "sum" else 1.0
        return float(self.weights.get(name, 0.0))


# The keyword side of an adaptive hybrid search, per query (docs/benchmarks.md, "Hybrid on unseen collections"):
# - STRICT: documents matching most of the query's terms (minimum_should_match), at the configured weight.
#   For a query of several words, a document matching one of them is weak evidence that mostly adds noise.
# - FALLBACK: the strict list is empty (long, report-style queries: no document holds 75% of 50 words), so
#   the any-term list stands in, weighted higher: it is the only keyword evidence there is, and with many
#   terms the best BM25 matches share many of them.
# - EXHAUSTIVE: fewer documents match any term than the window holds, so every keyword match was seen, and
#   they are at most RARE_MATCH_FRACTION of the documents searched: the terms are rare in this corpus
#   (identifiers, product names, domain vocabulary: each has an idf of 3 or more), where BM25 is precise and
#   a dense model, which splits unknown words into pieces, is weakest. The keyword matches then lead, those
#   holding most of the terms first (keyword_matches: kNN's first, where it is a match, leads its tier unless BM25's
#   own first stands out in it), and the semantic list fills the rest of the page. (The fraction keeps a small
#   index, where any query matches fewer documents than the window, from being keyword-led throughout.)
# - AGREED: as EXHAUSTIVE, but the semantic list's top page lies (almost) wholly among those keyword matches. The
#   dense model is then not lost on the rare terms: both retrievers rank the same few documents, so the two
#   orders are fused at the any-term weight instead of the keyword order being imposed (entity names such as
#   "keith urban" on dbpedia-entity; package-description queries, whose kNN page mostly misses the terms, stay
#   EXHAUSTIVE).
STRICT, FALLBACK, EXHAUSTIVE, AGREED = "strict", "fallback", "exhaustive", "agreed"
# EXHAUSTIVE's factor makes the last keyword rank of a window outscore the first semantic rank in RRF.
KEYWORD_WEIGHT_FACTORS = {STRICT: 1.0, FALLBACK: 2.4, EXHAUSTIVE: 1000.0, AGREED: 2.4}
RARE_MATCH_FRACTION = 0.05
AGREEMENT_PAGE, AGREEMENT_SHARE = 10, 0.9  # AGREED: at least 9 of the semantic list's top 10 are keyword matches
KEYWORD, KEYWORD_ANY, SEMANTIC = "keyword", "keyword_any", "semantic"  # the strict and any-term keyword lists, kNN
KEYWORD_PHRASE = "keyword_phrase"  # documents holding the query's words in its order (a phrase match)
DOCUMENTS = "documents"  # in a query's candidates: how many documents it searched (an int, not a list)
QUESTION = "question"  # in a query's candidates: whether the query is a question (a bool: is_question), not a list
TERMS = "terms"  # in a query's candidates: how many terms it searches for (an int; None: unknown, or filtered)
# In a query's candidates: how many terms the index's documents hold on average over its text fields (a float; None:
# unknown), from the cluster's own term statistics (semsearch.index.statistics).
DOCUMENT_TERMS = "document_terms"
NOT_LISTS = (DOCUMENTS, QUESTION, TERMS, DOCUMENT_TERMS)  # what a query's candidates hold besides ranked lists


def keyword_evidence(strict: Sequence[Ranked], any_term: Sequence[Ranked], window: int,
                     documents: int | None, semantic: Sequence[Ranked] = (), lead_ratio: float | None = None
                     ) -> tuple[str, list[Ranked]]:
    """Which keyword list stands for the keyword side of one query, and why (STRICT, FALLBACK, EXHAUSTIVE,
    AGREED). ``documents``: how many documents the query searched (None: unknown, and nothing counts as rare);
    ``semantic``: the kNN list, whose top page tells EXHAUSTIVE from AGREED, and whose first hit leads its tier of
    keyword matches unless BM25's first stands out there by ``lead_ratio`` (None: TIER_LEAD_RATIO;
    :func:`keyword_matches`)."""
    if not any_term:  # no document holds any term: nothing to adapt
        return STRICT, list(strict)
    if _rare(any_term, window, documents):
        matches = keyword_matches(strict, any_term, semantic, lead_ratio)
        return (AGREED if _dense_agrees(semantic, matches) else EXHAUSTIVE), matches
    return strict_or_fallback(strict, any_term)


def strict_or_fallback(strict: Sequence[Ranked], any_term: Sequence[Ranked]) -> tuple[str, list[Ranked]]:
    """The keyword side of a query whose matches are not to lead: the strict list (STRICT), or where it is empty the
    any-term list (FALLBACK)."""
    return (STRICT, list(strict)) if strict else (FALLBACK, list(any_term))


# STANDOUT: a STRICT or FALLBACK query whose best any-term BM25 match stands out from the rest of that list
# (STANDOUT_Z standard deviations or more above the list's mean score) is fused by score, not by rank: z-scores of
# the any-term list (weight × STANDOUT_WEIGHT_FACTOR) and of the kNN list, summed. Rank fusion gives rank 1 the same
# credit however far ahead it is; a BM25 score far above the rest is confident evidence (an index entry, an error
# message, a docstring's own words), and score fusion lets such a match, and a kNN match far ahead, lead. Where
# BM25's top scores are bunched (dbpedia-entity's queries, whose terms many abstracts share) rank fusion with the
# strict list is kept: there score fusion lost (docs/benchmarks.md, "Round 5"). EXHAUSTIVE and AGREED are untouched.
# A question, then a small index, are asked about first (QUESTION and SMALL_INDEX below).
STANDOUT_Z = 4.0
STANDOUT_WEIGHT_FACTOR = 3.0  # the default keyword weight 0.25 becomes 0.75 beside kNN's 1.0


def keyword_stands_out(any_term: Sequence[Ranked]) -> bool:
    """Whether the best hit of the any-term BM25 list scores STANDOUT_Z or more standard deviations above the
    mean of the list's first ZSCORE_DEPTH hits (the z-score of n hits' best is at most √(n−1): a list of 16 or
    fewer never stands out)."""
    return max(_normalise(any_term, "zscore").values(), default=0.0) >= STANDOUT_Z


def fused_for_standout(kind: str, any_term: Sequence[Ranked]) -> bool:
    """Whether adaptive fusion fuses a query's lists by score because BM25's best match stands out (STANDOUT),
    given its keyword evidence's kind, for a query that is no question and searches documents of an unknown number
    (as in a large index: :func:`score_fusion_reason`, which also gives the other reasons)."""
    return score_fusion_reason(kind, any_term, ()) == STANDOUT


# DENSE LEAD: a STRICT or FALLBACK query not fused by score for BM25 (STANDOUT), whose best kNN match is far ahead of
# its second (by DENSE_GAP_Z standard deviations of the kNN list's first ZSCORE_DEPTH scores or more), is fused by
# z-scores too: the kNN list and the kind's keyword list at weight × DENSE_LEAD_WEIGHT_FACTOR. Rank fusion gives a
# document that both lists hold at middling ranks more than kNN's clear first; where the question's own answer shares
# few of its words (FAQs: how do I…? over answers), that pushed the answer down, and hybrid fell 0.03–0.06 below
# semantic search. z-scores keep a lead as wide as the dense model saw it (docs/benchmarks.md, "Round 6").
DENSE_GAP_Z = 0.75
DENSE_LEAD_WEIGHT_FACTOR = 2.0  # the default keyword weight 0.25 becomes 0.5 beside kNN's 1.0
DENSE_LEAD_MIN_HITS = 10  # a page: the deviation of fewer scores says little (two hits are always 2 apart)


def dense_leads(semantic: Sequence[Ranked]) -> bool:
    """Whether the kNN list's first hit scores DENSE_GAP_Z or more standard deviations (of the list's first
    ZSCORE_DEPTH scores) above its second; never for a list shorter than DENSE_LEAD_MIN_HITS."""
    if len(semantic) < DENSE_LEAD_MIN_HITS:
        return False
    z = _normalise(semantic, "zscore")  # the difference of two z-scores is the gap in deviations (0 if all equal)
    return z[semantic[0].id] - z[semantic[1].id] >= DENSE_GAP_Z


# QUESTION: a STRICT or FALLBACK query that asks a question (semsearch.query.question.is_question, which says how it
# tells one) is fused by z-scores of the any-term list at weight × QUESTION_WEIGHT_FACTOR and of the kNN list, before
# the two rules above are asked.
# Sentence encoders are trained on questions and their answers; BM25 over a question's words finds the documents
# that repeat them (a cross-reference, a neighbouring question) more often than the one that answers it. On FAQ
# collections the dense models beat BM25 by 0.16–0.31, and with rounds 5 and 6 hybrid fell 0.01–0.05 below semantic
# search; on dbpedia-entity (8 questions of 40) this weight ranked about as well as rank fusion did, −0.005 to
# +0.004 (docs/benchmarks.md, "Round 7"). A little BM25 still helps: with the keyword weight at 0 the FAQs' lowest
# and mean margins were both lower.
QUESTION_WEIGHT_FACTOR = 0.4  # the default keyword weight 0.25 becomes 0.1 beside kNN's 1.0


# SMALL_INDEX: a STRICT or FALLBACK query that is no question and searches fewer than SMALL_INDEX_DOCUMENTS documents (a
# small index, or a filter that leaves few) is fused by z-scores of the any-term list, at the configured keyword weight,
# and of the kNN list; phrase matches are not weighted up (rare strict matches are: RARE_STRICT). Rank fusion rewards a
# document for being in both lists, but where the window of kNN candidates holds a fifth of the documents searched or
# more, nearly every keyword match is in the kNN list too, so being in both says little; z-scores count how far a
# document's score stands above the rest of each list. And a phrase there is found more often where it is cited (a
# glossary's term in other definitions, a heading in the sections that refer to it) than in the document it names. On
# glossaries (a term over its definition, where BM25 finds the definitions that cite the term) rank fusion put hybrid up
# to 0.059 below semantic search; on headings and FAQs the z-scores keep most of what rank fusion gained
# (docs/benchmarks.md, "Round 12"). STANDOUT and DENSE_LEAD above are not asked there: z-scores already let a
# standing-out match lead. An any-term list of one hit, or of equal scores, adds nothing to the z-scores (each is 0):
# such a query is fused as semantic search there (and its rare strict matches weighted up: RARE_STRICT), unless the
# index is so small that no single match could count as rare (under 20 documents), where a lone exact match keeps rank
# fusion's reward; a query no document holds a term of is fused as in a large index (fused_for_small_index). Until round
# 19 it was fused by rank, as in a large index, where a document both lists hold passes kNN's first: the one description
# that cites an identifier (a configuration variable's name over its description, which seldom holds it) put hybrid
# 0.011 below semantic search on git's variables and 0.005 to 0.008 on PostgreSQL's parameters (held out of round 19);
# fused so, WordNet's headwords (whose one match is often the entry sought) keep less of their margin
# (docs/benchmarks.md, "Round 19").
SMALL_INDEX_WEIGHT_FACTOR = 1.0  # the configured keyword weight, as it is
# Not tuned: round 11's small index (where its rare-terms test, withdrawn in round 12, applied); 5% of 500 is 25
# documents, a quarter of the default window.
SMALL_INDEX_DOCUMENTS = 500


# SUBJECT: a query of one term fused for a small index (SMALL_INDEX above; a search with no filter) whose best BM25
# match holds that term throughout is fused by the same z-scores, the keyword weight × SUBJECT_WEIGHT_FACTOR: BM25
# counts twice as much as kNN. How much a document holds a term is BM25's term-frequency factor,
# tf / (tf + k1 · length norm), which nears 1 as the term repeats (a command's name all through its own man page: 0.98
# for "add" in git-add's page, 51 times) and stays lower for a term used in passing (a glossary's term in the
# definitions that cite it, or in its own: under 0.9 in the five glossaries seen, 0.895 at most). One term's matches
# all share its idf, so the factor is the score over BM25_TERM_CEILING × idf (term_saturation). In a small index of
# names over their pages (man pages, git's commands, Perl's functions) BM25's first is the page sought more often than
# kNN's, and the small index's light keyword side put hybrid up to 0.05 below keyword search; the glossaries, which
# want it light, never reach the factor (docs/benchmarks.md, "Round 15").
SUBJECT_SATURATION = 0.9
SUBJECT_WEIGHT_FACTOR = 8.0  # the default keyword weight 0.25 becomes 2.0 beside kNN's 1.0
# A term's BM25 score tops out at (k1 + 1) × idf: 2.2 × idf at k1 = 1.2, OpenSearch's and Elasticsearch's default (an
# index with another k1 makes term_saturation an estimate).
BM25_TERM_CEILING = 2.2


# LONG_DOCUMENTS: a query fused for a small index (SMALL_INDEX above) in an index whose documents hold
# LONG_DOCUMENT_TERMS terms or more on average (DOCUMENT_TERMS: the cluster's own count, over every document of the
# index) is fused by the same z-scores, the keyword weight × LONG_DOCUMENTS_WEIGHT_FACTOR, as SUBJECT is. And where
# its rare keyword matches lead (EXHAUSTIVE, AGREED), BM25's first keeps its tier's lead where it scores
# LONG_TIER_LEAD_RATIO times the tier's second, not TIER_LEAD_RATIO. Long documents are pages (a module's, a
# function's, a command's), and a page names its subject all through it: BM25 finds the page a name is the subject
# of, and kNN's first is more often a neighbouring page (iconv_open for iconv) than in an index of short entries. A
# glossary or an FAQ cites a term in passing: those the small index's light keyword side is for. On the collections
# seen when it was chosen, the names over their pages average 316 to 1,961 terms, every other collection 7 to 194
# (perlfunc's entries): the threshold is the middle of that gap, not tuned (150 and 320 left as many lists below).
# Names of two terms (File::Temp) and queries of more than one word reach it where SUBJECT cannot
# (docs/benchmarks.md, "Round 16"). The mean is the whole index's, also where a filter leaves few of its documents
# (they stand for the index's kind), and one concrete index's behind an alias over several.
LONG_DOCUMENT_TERMS = 250.0
LONG_DOCUMENTS_WEIGHT_FACTOR = 8.0  # as SUBJECT's: the default keyword weight 0.25 becomes 2.0 beside kNN's 1.0
LONG_TIER_LEAD_RATIO = 1.05  # of 1.0, 1.05, 1.1 and 1.2, the fewest lists below on the seen names (round 16)


# SHORT_DOCUMENTS: the other end. A query fused for a small index whose documents hold fewer than SHORT_DOCUMENT_TERMS
# terms on average (a glossary's definitions, a dictionary's entries) is fused by the same z-scores with the keyword
# weight × SHORT_DOCUMENTS_WEIGHT_FACTOR, and a query of one term there is never keyword-led: its rare matches
# (EXHAUSTIVE, AGREED) are fused as the small index fuses a STRICT query (query_evidence: SHORT_DOCUMENTS, or SUBJECT
# where its best match holds the term throughout). A glossary's term is rare, and its few matches are the definitions
# that cite it, not the one that defines it, which seldom repeats it; kNN finds that one. Known-item queries of several
# rare terms (the debian-packages subsample's), whose matches are the documents sought, keep their lead: only one-term
# queries lose it. On the collections seen when it was chosen the glossaries, dictionaries, synopses and vera average 7
# to 42 terms and the subsample of package descriptions 57: the threshold is the middle of that gap (docs/benchmarks.md,
# "Round 17").
SHORT_DOCUMENT_TERMS = 50.0
SHORT_DOCUMENTS_WEIGHT_FACTOR = 0.4  # as QUESTION's: the default keyword weight 0.25 becomes 0.1 beside kNN's 1.0


def searched_few(documents: int | None) -> bool:
    """Whether a query searched a small index: fewer than SMALL_INDEX_DOCUMENTS documents (pure; False when unknown)."""
    return documents is not None and documents < SMALL_INDEX_DOCUMENTS


def short_documents(documents: int | None, document_terms: float | None) -> bool:
    """Whether a query searched a small index (:func:`searched_few`) of short documents (fewer than
    SHORT_DOCUMENT_TERMS terms on average) (pure; False when either is unknown)."""
    return searched_few(documents) and document_terms is not None and document_terms < SHORT_DOCUMENT_TERMS


def long_documents(documents: int | None, document_terms: float | None) -> bool:
    """Whether a query searched a small index (:func:`searched_few`) of long documents (LONG_DOCUMENT_TERMS terms or
    more on average) (pure; False when either is unknown)."""
    return searched_few(documents) and document_terms is not None and document_terms >= LONG_DOCUMENT_TERMS


def term_saturation(any_term: Sequence[Ranked], documents: int) -> float:
    """An estimate of BM25's term-frequency factor of the best any-term match of a one-term query that searched
    ``documents`` documents: its score over BM25_TERM_CEILING × the term's idf, taking the list's length for the number
    of documents that hold the term (pure; 0 for an empty list). A list cut at the window holds fewer than all of them,
    so the idf is then overestimated and the factor underestimated. With two text fields (``title`` and ``text``) the
    score adds half of the other field's (best_fields' tie breaker) and the factor can pass 1. Where a filter narrowed
    the documents searched, BM25's idf is still the whole index's: candidates carry no term count then (TERMS), and
    SUBJECT is not asked."""
    holding = len(any_term)
    idf = math.log(1 + (documents - holding + 0.5) / (holding + 0.5)) if holding else 0.0
    return any_term[0].score / (BM25_TERM_CEILING * idf) if idf > 0 else 0.0


STANDOUT, DENSE_LEAD = "standout", "dense_lead"  # why a query is fused by score (score_fusion_reason)
SMALL_INDEX, SUBJECT, LONG_DOCUMENTS, SHORT_DOCUMENTS = "small_index", "subject", "long_documents", "short_documents"
# the reasons of a query that searched few documents
SMALL_INDEX_REASONS = (SMALL_INDEX, SUBJECT, LONG_DOCUMENTS, SHORT_DOCUMENTS)


def score_fusion_reason(kind: str, any_term: Sequence[Ranked], semantic: Sequence[Ranked],
                        question: bool = False, documents: int | None = None, terms: int | None = None,
                        document_terms: float | None = None) -> str | None:
    """Why adaptive fusion fuses a query's lists by score, given its keyword evidence's kind, whether it is a
    question, how many documents it searched, how many terms it searches for and how many the index's documents hold
    on average (None: unknown): QUESTION (first), SUBJECT (one term, fewer than SMALL_INDEX_DOCUMENTS searched, and its
    best BM25 match holds the term throughout), LONG_DOCUMENTS (fewer searched, and long: :func:`long_documents`),
    SHORT_DOCUMENTS (fewer searched, and short: :func:`short_documents`), SMALL_INDEX (fewer searched:
    :func:`fused_for_small_index`), STANDOUT (BM25's best match stands out), DENSE_LEAD (kNN's is far ahead of its
    second), or None (rank fusion)."""
    if kind not in (STRICT, FALLBACK):
        return None
    if question:
        return QUESTION
    if fused_for_small_index(any_term, documents):
        if terms == 1 and term_saturation(any_term, documents) >= SUBJECT_SATURATION:
            return SUBJECT
        if long_documents(documents, document_terms):
            return LONG_DOCUMENTS
        return SHORT_DOCUMENTS if short_documents(documents, document_terms) else SMALL_INDEX
    if keyword_stands_out(any_term):
        return STANDOUT
    return DENSE_LEAD if dense_leads(semantic) else None


def fused_for_small_index(any_term: Sequence[Ranked], documents: int | None) -> bool:
    """Whether a STRICT or FALLBACK query that is no question is fused for a small index (SMALL_INDEX_REASONS): fewer
    than SMALL_INDEX_DOCUMENTS searched and some document holds a term (no keyword match: as a large index, where kNN's
    lead is asked about), whatever its matches' scores (round 19), except that matches scoring alike (one hit, or equal
    scores), which add nothing to the z-scores, keep rank fusion where no single match could count as rare (fewer than
    1 / RARE_MATCH_FRACTION documents: in an index of a few documents a lone exact match should still rise)."""
    if not searched_few(documents) or not any_term:
        return False
    return not scores_alike(any_term) or documents * RARE_MATCH_FRACTION >= 1


def scores_alike(hits: Sequence[Ranked]) -> bool:
    """Whether a list's scores, over the hits its z-scores are taken from (ZSCORE_DEPTH), are all the same (one hit, or
    equal scores; none too): z-scores then give every hit 0 (pure)."""
    return len({hit.score for hit in hits[:ZSCORE_DEPTH]}) <= 1


def query_fusion_reason(lists: Mapping[str, Any], kind: str) -> str | None:
    """:func:`score_fusion_reason` for one query's candidate lists (which hold KEYWORD_ANY), given its kind."""
    return score_fusion_reason(kind, lists[KEYWORD_ANY], lists.get(SEMANTIC, ()), bool(lists.get(QUESTION)),
                               lists.get(DOCUMENTS), lists.get(TERMS), lists.get(DOCUMENT_TERMS))


# PHRASE: a document that holds a query of several words as a phrase, in the query's order, is precise keyword
# evidence (an index entry found in the node it indexes, a title, a quoted message), which neither BM25 over separate
# terms nor a dense vector ranks first reliably (docs/benchmarks.md, "Round 4"). Such documents count as one more
# list, in the any-term BM25 order (phrase_order), as heavy as the semantic list (PHRASE_WEIGHT_FACTOR): under rank
# fusion each gets weight / (rrf_k + its place in that order), under score fusion the weight itself (as many standard
# deviations of the kNN list's scores). Rounds 4 to 9 made them lead the page outright; but a phrase is also found
# where it is cited ("as given in Permissions and owners", a cross-reference to a heading), and on the Debian Policy
# Manual's headings that cost hybrid 0.04–0.05 and put it below semantic search, where weighted it is 0.02–0.04
# above; info-index's entries, which the lead was made for, keep most of their gain (docs/benchmarks.md, "Round
# 10"). Which queries ask for a phrase search: semsearch.query.plan.wants_phrase.
PHRASE_WEIGHT_FACTOR = 1.0  # × the semantic list's weight


def phrase_order(phrase: Sequence[Ranked], any_term: Sequence[Ranked]) -> list[Ranked]:
    """The phrase matches in the order they are weighted: the any-term BM25 list's, over all of the query's terms and
    fields (a phrase search scores only how often the phrase occurs); any beyond that list follow in phrase order."""
    rank = {hit.id: position for position, hit in enumerate(any_term)}
    return sorted(phrase, key=lambda hit: rank.get(hit.id, len(rank)))  # stable: the rest keep the phrase order


def query_evidence(lists: Mapping[str, Any], window: int) -> tuple[str, list[Ranked]]:
    """:func:`keyword_evidence` for one query's candidate lists (which hold KEYWORD and KEYWORD_ANY); in a small index
    of long documents BM25's first keeps its tier's lead at LONG_TIER_LEAD_RATIO (LONG_DOCUMENTS), and in one of short
    documents a query of one term is never keyword-led (SHORT_DOCUMENTS: STRICT, or FALLBACK without strict matches)."""
    documents, document_terms = lists.get(DOCUMENTS), lists.get(DOCUMENT_TERMS)
    lead_ratio = LONG_TIER_LEAD_RATIO if long_documents(documents, document_terms) else TIER_LEAD_RATIO
    kind, keyword = keyword_evidence(lists[KEYWORD], lists[KEYWORD_ANY], window, documents, lists.get(SEMANTIC, ()),
                                     lead_ratio)
    if kind in (EXHAUSTIVE, AGREED) and lists.get(TERMS) == 1 and short_documents(documents, document_terms):
        return strict_or_fallback(lists[KEYWORD], lists[KEYWORD_ANY])
    return kind, keyword


def phrases_weighed(lists: Mapping[str, Any], reason: str | None) -> bool:
    """Whether adaptive fusion weighs a query's phrase matches up (PHRASE), given its score-fusion reason: where it
    has any, unless it is fused for a small index (SMALL_INDEX_REASONS)."""
    return bool(lists.get(KEYWORD_PHRASE)) and reason not in SMALL_INDEX_REASONS


# RARE_STRICT (round 18): a query fused for a small index has no phrase matches weighted up (round 10: a glossary's
# definitions cite its terms as phrases), and its keyword side is the any-term list, mostly lightly weighted (round 12;
# × 0.4 in short documents, round 17): a document holding two or three of its unusual words together then ranks among
# every document holding one common word of the query, and a changelog entry or an index entry recalled by its words
# is lost to kNN's neighbours. Where a query of RARE_STRICT_MIN_TERMS terms or more has strict matches (documents
# holding most of its terms), all of them seen (fewer than the window), and they are rare (at most RARE_MATCH_FRACTION
# of the documents searched, _rare's share), those few documents are precise keyword evidence, and each is weighted
# up as a phrase match is elsewhere (PHRASE_WEIGHT_FACTOR × the semantic weight: under z-score fusion, one deviation
# of kNN's scores), whatever the small-index reason (under LONG_DOCUMENTS, whose keyword side is heavy, as well: the
# seen lists did not tell them apart). A filtered search knows no term count (TERMS), so none is weighted up there.
# No new constant was fitted: on the 130 lists seen, 20 below the better single mode instead of 27
# (docs/benchmarks.md, "Round 18").
KEYWORD_RARE_STRICT = "keyword_rare_strict"  # in what adapt chose: the rare strict matches weighted up
RARE_STRICT_MIN_TERMS = 2
# The lists of matches that adaptive fusion weighs up rather than fuses by their scores: a phrase search's (PHRASE) and
# the rare strict matches (RARE_STRICT). A hit's contribution from either is the keyword retriever's (per_retriever).
WEIGHED_UP = (KEYWORD_PHRASE, KEYWORD_RARE_STRICT)


def rare_strict_matches(lists: Mapping[str, Any], reason: str | None, window: int) -> list[Ranked]:
    """The strict matches adaptive fusion weighs up for one query (RARE_STRICT), given its score-fusion reason and the
    window its lists were asked for: where it is fused for a small index (SMALL_INDEX_REASONS), searches
    RARE_STRICT_MIN_TERMS terms or more (known: no filter), and its strict list is not empty, shorter than the window
    (a full list may hold only the first of more) and holds at most RARE_MATCH_FRACTION of the documents searched; else
    none (pure)."""
    strict, documents, terms = lists.get(KEYWORD, ()), lists.get(DOCUMENTS), lists.get(TERMS)
    if reason not in SMALL_INDEX_REASONS or documents is None or terms is None or terms < RARE_STRICT_MIN_TERMS:
        return []
    return list(strict) if strict and _rare(strict, window, documents) else []


def _rare(matches: Sequence[Ranked], window: int, documents: int | None) -> bool:
    """Whether a query's keyword matches are all seen and rare: fewer than the window, and at most RARE_MATCH_FRACTION
    of the documents searched (the any-term matches, to stand for BM25 as EXHAUSTIVE or AGREED; the strict ones, to be
    weighted up as RARE_STRICT)."""
    return documents is not None and len(matches) < window and len(matches) <= RARE_MATCH_FRACTION * documents


# Where rare keyword matches lead (EXHAUSTIVE), BM25 orders them, those holding most of the query's terms first. A
# document that kNN ranks first and that holds as many of the terms as any other has both retrievers behind it, where
# BM25's own first may be one that only repeats a term (a glossary's definitions that cite a term, not the one that
# defines it): so kNN's first, where it is a match, leads its tier (round 12: 30 of the 46 large lists seen gained,
# up to 0.023, and 4 lost 0.002 at most; docs/benchmarks.md). Unless BM25's own first scores TIER_LEAD_RATIO times
# the tier's second or more: for a query of one term, whose matches all hold the same term, a score that far ahead is
# the term repeated throughout its document (a command's name in its own man page), not a citation, and BM25's first
# keeps the lead (round 14: of the 82 lists seen, 21 below the better single mode instead of 24, none moved by more
# than 0.005; on the held-out lists, the 14 queries it changed all for the better; docs/benchmarks.md).
TIER_LEAD_RATIO = 1.3


def keyword_matches(strict: Sequence[Ranked], any_term: Sequence[Ranked],
                    semantic: Sequence[Ranked], lead_ratio: float | None = None) -> list[Ranked]:
    """EXHAUSTIVE's and AGREED's keyword list: the strict matches, then the other any-term matches, each tier in
    BM25 order, except that kNN's first hit, where it is in a tier, leads that tier, unless BM25's first in that tier
    stands out by ``lead_ratio`` (None: TIER_LEAD_RATIO; :func:`bm25_leads_tier`) (pure)."""
    first = semantic[0].id if semantic else None
    held = {hit.id for hit in strict}
    tiers = (list(strict), [hit for hit in any_term if hit.id not in held])
    return [hit for tier in tiers
            for hit in (tier if bm25_leads_tier(tier, lead_ratio)
                        else sorted(tier, key=lambda hit: hit.id != first))]  # stable


def bm25_leads_tier(tier: Sequence[Ranked], ratio: float | None = None) -> bool:
    """Whether BM25's first in a tier of keyword matches (best first) scores ``ratio`` (None: TIER_LEAD_RATIO) times
    its second or more, and so keeps its place ahead of kNN's first (a tier of one has nothing to reorder; scores of 0
    stand out nowhere)."""
    ratio = TIER_LEAD_RATIO if ratio is None else ratio
    return len(tier) > 1 and tier[1].score > 0 and tier[0].score >= ratio * tier[1].score


def _dense_agrees(semantic: Sequence[Ranked], matches: Sequence[Ranked]) -> bool:
    page = semantic[:AGREEMENT_PAGE]
    matched = {hit.id for hit in matches}
    return bool(page) and sum(hit.id in matched for hit in page) >= AGREEMENT_SHARE * len(page)


class Adaptation(NamedTuple):
    """What :func:`adapt` chose for one query: the ``lists`` to fuse (KEYWORD holds the keyword list chosen) and the
    ``fusion`` to fuse them with (give both to :func:`fuse_adapted`); the keyword evidence's ``kind`` and the
    ``reason`` for fusing by score (None: nothing adapts, or rank fusion); ``keyword_list``: which keyword list KEYWORD
    holds (KEYWORD, KEYWORD_ANY or KEYWORD_MATCHES), for :func:`fusion_choice`."""

    lists: dict[str, Sequence[Ranked]]
    fusion: FusionConfig
    kind: str | None = None
    reason: str | None = None
    keyword_list: str = KEYWORD


KEYWORD_MATCHES = "keyword_matches"  # the keyword list of EXHAUSTIVE and AGREED: the strict, then the any-term
# The reasons that fuse z-scores of the any-term list, and the factor on the configured keyword weight of each.
ANY_TERM_WEIGHT_FACTORS = {QUESTION: QUESTION_WEIGHT_FACTOR, SMALL_INDEX: SMALL_INDEX_WEIGHT_FACTOR,
                           SUBJECT: SUBJECT_WEIGHT_FACTOR, LONG_DOCUMENTS: LONG_DOCUMENTS_WEIGHT_FACTOR,
                           SHORT_DOCUMENTS: SHORT_DOCUMENTS_WEIGHT_FACTOR, STANDOUT: STANDOUT_WEIGHT_FACTOR}
# Which keyword list each kind fuses (a question, a small index (SMALL_INDEX_REASONS) or a standout fuses KEYWORD_ANY
# whatever the kind: adapt).
KEYWORD_LIST_OF_KIND = {STRICT: KEYWORD, FALLBACK: KEYWORD_ANY, EXHAUSTIVE: KEYWORD_MATCHES, AGREED: KEYWORD_MATCHES}


def adapt(lists: Mapping[str, Any], config: FusionConfig, window: int) -> Adaptation:
    """The lists and fusion an adaptive config fuses for one query's candidates (``lists``: ranked lists by
    retriever, :data:`DOCUMENTS`, :data:`QUESTION`, :data:`TERMS` and :data:`DOCUMENT_TERMS`), and why
    (:class:`Adaptation`; its kind is None when nothing adapts: a non-adaptive config, or no any-term list). Fuse them
    with :func:`fuse_adapted`, which weighs the WEIGHED_UP lists' matches up under score fusion too."""
    plain = {name: hits for name, hits in lists.items() if name not in (KEYWORD_ANY, KEYWORD_PHRASE, *NOT_LISTS)}
    if not config.adaptive or KEYWORD_ANY not in lists or KEYWORD not in lists:
        return Adaptation(plain, config)
    kind, keyword = query_evidence(lists, window)
    weights = {name: config.weight(name) for name in plain}
    method = config.method
    reason = query_fusion_reason(lists, kind)
    keyword_list = KEYWORD_LIST_OF_KIND[kind]
    if reason in ANY_TERM_WEIGHT_FACTORS:  # QUESTION, SMALL_INDEX_REASONS, STANDOUT: z-scores of the any-term list
        method, keyword, keyword_list = "zscore", list(lists[KEYWORD_ANY]), KEYWORD_ANY
        weights[KEYWORD] = config.weight(KEYWORD) * ANY_TERM_WEIGHT_FACTORS[reason]
    elif reason == DENSE_LEAD:  # DENSE LEAD above: z-scores of the kind's own keyword list
        method = "zscore"
        weights[KEYWORD] = config.weight(KEYWORD) * DENSE_LEAD_WEIGHT_FACTOR
    else:
        weights[KEYWORD] = config.weight(KEYWORD) * KEYWORD_WEIGHT_FACTORS[kind]
        if kind == EXHAUSTIVE:  # whatever the weights and window: its last keyword rank beats rank 1 of the rest
            weights[KEYWORD] = max(weights[KEYWORD], _leading_weight(weights, KEYWORD, config.rrf_k, window))
    chosen = {**plain, KEYWORD: keyword}
    weighed_up = {KEYWORD_PHRASE: phrase_order(lists[KEYWORD_PHRASE], lists[KEYWORD_ANY])  # PHRASE above
                  if phrases_weighed(lists, reason) else [],
                  KEYWORD_RARE_STRICT: rare_strict_matches(lists, reason, window)}  # RARE_STRICT above
    for name, matches in weighed_up.items():
        if matches:  # fuse_adapted weighs them up as one more list, as heavy as the semantic one
            chosen[name] = matches
            weights[name] = config.weight(SEMANTIC) * PHRASE_WEIGHT_FACTOR
    return Adaptation(chosen, FusionConfig(method, weights, config.rrf_k), kind, reason, keyword_list)


@dataclass(frozen=True)
class FusionChoice:
    """How hybrid mode fused one query's lists, for ``explain`` (``description``: all of it in one line):

    - ``method`` (``rrf``, ``zscore``, …; ``rrf_k``, RRF's rank constant) and each retriever's weight as fused;
    - ``keyword_list``: the keyword list fused: KEYWORD (documents holding most of the query's terms), KEYWORD_ANY
      (any term) or KEYWORD_MATCHES (every keyword match, those holding most terms first); ``keyword_hits``: how many
      of its documents were fused (0: semantic alone);
    - for an adaptive fusion, ``keyword_evidence``: the kind the keyword side's rule found (STRICT, FALLBACK,
      EXHAUSTIVE, AGREED), and ``reason``: why the lists were fused by score (QUESTION, SUBJECT, SMALL_INDEX,
      LONG_DOCUMENTS, SHORT_DOCUMENTS, STANDOUT, DENSE_LEAD; None: by rank). A question, a small index
      (SMALL_INDEX_REASONS) or a standout fuses the any-term list whatever the kind. ``phrase_matches``: how many
      documents holding the query as a phrase were weighted up, and ``phrase_weight``, by how much (PHRASE; none under
      SMALL_INDEX_REASONS); ``rare_strict_matches``: how many rare strict matches were weighted up, and
      ``rare_strict_weight``, by how much (RARE_STRICT; only under SMALL_INDEX_REASONS). None and 0 where nothing
      adapts (a plain fusion)."""

    method: str
    weights: dict[str, float] = field(hash=False)  # hashable all the same: a Counter of choices works
    keyword_evidence: str | None = None
    reason: str | None = None
    phrase_matches: int = 0
    keyword_list: str = KEYWORD
    keyword_hits: int = 0
    rrf_k: int = 60
    phrase_weight: float = 0.0
    rare_strict_matches: int = 0
    rare_strict_weight: float = 0.0

    @property
    def description(self) -> str:
        """:func:`describe_choice`: one line for people."""
        return describe_choice(self)

    def as_json(self) -> dict[str, Any]:
        """Every field and the description: what ``--json`` and the REST API answer."""
        return {**asdict(self), "description": self.description}


def fusion_choice(adapted: Adaptation) -> FusionChoice:
    """What :func:`adapt` chose for one query, as :class:`FusionChoice` says it (pure)."""
    chosen, fusion = adapted.lists, adapted.fusion
    weights = {name: fusion.weight(name) for name in chosen if name not in WEIGHED_UP}
    phrase, rare_strict = len(chosen.get(KEYWORD_PHRASE, ())), len(chosen.get(KEYWORD_RARE_STRICT, ()))
    return FusionChoice(fusion.method, weights, adapted.kind, adapted.reason, phrase, adapted.keyword_list,
                        len(chosen.get(KEYWORD, ())), fusion.rrf_k, fusion.weight(KEYWORD_PHRASE) if phrase else 0.0,
                        rare_strict, fusion.weight(KEYWORD_RARE_STRICT) if rare_strict else 0.0)


# The words of describe_choice: "keyword" and "semantic" for the two retrievers, as in the weights and contributions.
_METHOD_WORDS = {"zscore": "by standardised scores (z-scores)", "minmax": "by min-max scaled scores",
                 "sum": "by the raw scores' sum"}
_REASON_WORDS = {QUESTION: "a question: semantic weighted far above keyword",
                 SMALL_INDEX: "few documents searched: each list counts by its scores",
                 SUBJECT: "few documents searched, and the best keyword match holds the query's one term throughout: "
                          "keyword weighted above semantic",
                 LONG_DOCUMENTS: "few documents searched, and long ones (pages): keyword weighted above semantic",
                 SHORT_DOCUMENTS: "few documents searched, and short ones (definitions): semantic weighted far above "
                                  "keyword",
                 STANDOUT: "the best keyword match stands out", DENSE_LEAD: "the best semantic match is far ahead"}
_LIST_WORDS = {KEYWORD: "documents holding most of the query's terms", KEYWORD_ANY: "documents holding any term",
               KEYWORD_MATCHES: "every keyword match, those holding most terms first"}
_EVIDENCE_WORDS = {FALLBACK: "none holds most", EXHAUSTIVE: "rare terms",
                   AGREED: "rare terms, which semantic agrees on"}


def describe_choice(choice: FusionChoice) -> str:
    """One line saying how a query's lists were fused, for people (``semsearch search --explain``; pure)."""
    how = f"by rank (RRF, k={choice.rrf_k})" if choice.method == "rrf" else _METHOD_WORDS.get(choice.method,
                                                                                                  choice.method)
    parts = [f"fused {how}" + (f", {_REASON_WORDS[choice.reason]}" if choice.reason else "")]
    if choice.keyword_evidence == EXHAUSTIVE:  # its weight (×1000) only makes the keyword matches lead
        parts.append("keyword matches first, then semantic")
    else:
        parts.append("weights " + ", ".join(f"{name} {weight:g}" for name, weight in choice.weights.items()))
    if choice.keyword_hits == 0:
        parts.append("keyword side: no match (semantic alone)")
    else:
        why = f" ({_EVIDENCE_WORDS[choice.keyword_evidence]})" if choice.keyword_evidence in _EVIDENCE_WORDS else ""
        parts.append(f"keyword side: {_LIST_WORDS.get(choice.keyword_list, choice.keyword_list)}{why}")
    if choice.phrase_matches:
        parts.append(f"{choice.phrase_matches} phrase match{'es' if choice.phrase_matches > 1 else ''} weighted up "
                     f"(weight {choice.phrase_weight:g})")
    if choice.rare_strict_matches:
        many = choice.rare_strict_matches > 1
        parts.append(f"{choice.rare_strict_matches} rare document{'s' if many else ''} holding most terms weighted up "
                     f"(weight {choice.rare_strict_weight:g})")
    return "; ".join(parts)


def fuse_adapted(chosen: Mapping[str, Sequence[Ranked]], fusion: FusionConfig) -> list[Fused]:
    """:func:`fuse` of what :func:`adapt` chose. Under rank fusion a list of matches weighed up (WEIGHED_UP) is one
    more list, by its order; under score fusion its matches have no scores to normalise with the others (a phrase
    search's, or the strict list's whose documents the any-term list already scores), so each gets that list's weight
    itself, whatever its place (:func:`weigh_matches`)."""
    weighed = [name for name in WEIGHED_UP if chosen.get(name)]
    if not weighed or fusion.method == "rrf":
        return fuse(chosen, fusion)
    weights = {**{name: fusion.weight(name) for name in chosen}, **{name: 0.0 for name in weighed}}
    fused = fuse(chosen, FusionConfig(fusion.method, weights, fusion.rrf_k))  # lists every match too
    for name in weighed:
        fused = weigh_matches(fused, [hit.id for hit in chosen[name]], fusion.weight(name), name)
    return fused


def weigh_matches(fused: Sequence[Fused], matches: Sequence[str], weight: float, name: str) -> list[Fused]:
    """``fused`` with each of ``matches`` scoring ``weight`` more, as its ``name`` contribution (KEYWORD_PHRASE or
    KEYWORD_RARE_STRICT; so scores still add up), re-sorted as :func:`fuse` sorts (pure)."""
    matched = set(matches)
    weighed = []
    for item in fused:
        if item.id in matched:
            parts = {**item.contributions}
            parts[name] = parts.get(name, 0.0) + weight
            item = Fused(item.id, item.score + weight, parts)
        weighed.append(item)
    weighed.sort(key=lambda f: (-f.score, f.id))
    return weighed


def _leading_weight(weights: Mapping[str, float], name: str, rrf_k: int, window: int) -> float:
    """An RRF weight for list ``name`` whose last rank of a window outscores rank 1 of every other list together."""
    others = sum(weight for other, weight in weights.items() if other != name)
    return 2 * others * (rrf_k + window) / (rrf_k + 1)


def fuse_hybrid(lists: Mapping[str, Any], config: FusionConfig, window: int) -> list[Fused]:
    """:func:`fuse` after :func:`adapt`: what hybrid mode returns for one query's candidate lists (contributions
    :func:`per_retriever`)."""
    chosen, fusion, *_ = adapt(lists, config, window)
    return [Fused(item.id, item.score, per_retriever(item.contributions)) for item in fuse_adapted(chosen, fusion)]


def per_retriever(contributions: Mapping[str, float]) -> dict[str, float]:
    """A fused hit's contributions by retriever: a weighed-up match's share (WEIGHED_UP) is the keyword retriever's
    (pure)."""
    folded = {name: value for name, value in contributions.items() if name not in WEIGHED_UP}
    for name in WEIGHED_UP:
        if name in contributions:
            folded[KEYWORD] = folded.get(KEYWORD, 0.0) + contributions[name]
    return folded


# z-scores take their mean and deviation from a list's first ZSCORE_DEPTH hits, and so does the floor a document
# missing from the list gets: a hit deeper than that scores no lower than the floor, as if missing. So a deeper
# window (a later page asks for offset + k candidates) scores every document of the first window's lists as the
# first page did, and what the deeper window adds ranks after them.
ZSCORE_DEPTH = 100


def _normalise(hits: Sequence[Ranked], method: str) -> dict[str, float]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    if method == "minmax":
        low, high = min(scores), max(scores)
        span = high - low
        return {h.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}
    head = scores[:ZSCORE_DEPTH]
    mean = sum(head) / len(head)
    std = math.sqrt(sum((s - mean) ** 2 for s in head) / len(head))
    z = [(score - mean) / std if std > 0 else 0.0 for score in scores]
    floor = min(z[:ZSCORE_DEPTH])
    return {h.id: value if rank < ZSCORE_DEPTH else max(value, floor) for rank, (h, value) in enumerate(zip(hits, z))}


def fuse(lists: Mapping[str, Sequence[Ranked]], config: FusionConfig) -> list[Fused]:
    """Fuse named ranked lists; ties broken by id so the order is stable across calls and pages.

    - ``rrf``: Σ weight / (rrf_k + rank).
    - ``minmax`` / ``zscore``: each list's scores normalised, then a weighted sum. A document
      missing from a list gets that list's lowest normalised score (0 for min-max).
    - ``sum``: the weighted sum of the raw scores (BM25 + kNN similarity), 0 where a list lacks the
      document: what the cluster computes for one query holding both (server-side on either engine).
      Raw BM25 scores run ~5–30 against kNN's 0.5–1, so useful keyword weights are small (0.003 was
      best on dbpedia-entity; ``semsearch eval --tune`` finds the one for your data).
    """
    if config.method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {config.method!r}; choose one of {', '.join(FUSION_METHODS)}")
    weighted: dict[str, tuple[dict[str, float], float]] = {}
    for name, hits in lists.items():
        weight = config.weight(name)
        if config.method == "rrf":
            values = {h.id: weight / (config.rrf_k + rank) for rank, h in enumerate(hits, start=1)}
            floor = 0.0
        elif config.method == "sum":
            values, floor = {h.id: weight * h.score for h in hits}, 0.0
        else:
            normalised = _normalise(hits, config.method)
            floor = weight * min(normalised.values(), default=0.0) if config.method == "zscore" else 0.0
            values = {doc_id: weight * value for doc_id, value in normalised.items()}
        weighted[name] = (values, floor)
    fused = []
    for doc_id in dict.fromkeys(h.id for hits in lists.values() for h in hits):
        parts = {name: values.get(doc_id, floor) for name, (values, floor) in weighted.items()}
        fused.append(Fused(doc_id, sum(parts.values()), parts))
    fused.sort(key=lambda f: (-f.score, f.id))
    return fused
