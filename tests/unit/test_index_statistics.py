"""How long an index's documents are: the pure functions of semsearch.index.statistics, and how both searchers read
it with an index's mapping (fake clients that record the request; never a failed search for it)."""

import asyncio
from types import SimpleNamespace

import pytest
from opensearchpy.exceptions import AuthorizationException

from semsearch import AsyncSearcher, Searcher
from semsearch.index.statistics import field_statistics_body, mean_document_terms

# The demo index on the local OpenSearch node: 300 documents, 830 title terms and 11,618 text terms.
ANSWER = {"term_vectors": {
    "title": {"field_statistics": {"sum_doc_freq": 827, "doc_count": 300, "sum_ttf": 830}},
    "text": {"field_statistics": {"sum_doc_freq": 9605, "doc_count": 300, "sum_ttf": 11618}}}}
# "docs" is an alias of the concrete index "docs-v2".
MAPPINGS = {"docs-v2": {"mappings": {
    "_meta": {"semsearch": {"vector_field": "embedding", "text_fields": ["title", "text"], "fingerprint": {"m": 1}}},
    "properties": {"embedding": {"type": "knn_vector", "dimension": 3}}}}}


def test_the_documents_mean_length_comes_from_the_text_fields_statistics():
    body = field_statistics_body(["title", "page.text"])
    assert body["doc"] == {"title": "semsearch", "page": {"text": "semsearch"}}
    assert body["fields"] == ["title", "page.text"]
    assert body["field_statistics"] and not body["term_statistics"] and not body["positions"]
    answer = {"term_vectors": {name: {"field_statistics": dict(v["field_statistics"])}
                               for name, v in ANSWER["term_vectors"].items()}}
    assert mean_document_terms(answer, ["title", "text"]) == pytest.approx((830 + 11618) / 300)
    # A title only some documents have counts over all documents (the text's count).
    answer["term_vectors"]["title"]["field_statistics"]["doc_count"] = 10
    assert mean_document_terms(answer, ["title", "text"]) == pytest.approx((830 + 11618) / 300)
    # A field no document holds yet is left out; no answer, no documents, or a count not kept: unknown.
    assert mean_document_terms({"term_vectors": {"text": answer["term_vectors"]["text"]}}, ["title", "text"]) \
        == pytest.approx(11618 / 300)
    assert mean_document_terms(None, ["title", "text"]) is None
    assert mean_document_terms({"term_vectors": {}}, ["title", "text"]) is None
    answer["term_vectors"]["text"]["field_statistics"]["sum_ttf"] = -1
    assert mean_document_terms(answer, ["title", "text"]) is None


class StatisticsClient:
    """The two requests a searcher makes to read an index: its mapping, then its term statistics (``answer``: what
    ``_termvectors`` answers, or the exception it raises)."""

    def __init__(self, answer):
        self.answer, self.asked = answer, []
        self.indices = SimpleNamespace(get_mapping=lambda index: MAPPINGS)

    def termvectors(self, index, body):
        self.asked.append((index, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class AsyncStatisticsClient(StatisticsClient):
    def __init__(self, answer):
        super().__init__(answer)

        async def get_mapping(index):
            return MAPPINGS
        self.indices = SimpleNamespace(get_mapping=get_mapping)

    async def termvectors(self, index, body):
        return super().termvectors(index, body)

    async def close(self):
        pass


def _read_async(client) -> float | None:
    async def read():
        return (await AsyncSearcher(client=client).index_info("docs")).document_terms
    return asyncio.run(read())


def test_both_searchers_read_the_mean_from_the_concrete_index_with_its_mapping():
    for client, read in ((StatisticsClient(ANSWER), lambda c: Searcher(client=c).index_info("docs").document_terms),
                         (AsyncStatisticsClient(ANSWER), _read_async)):
        assert read(client) == pytest.approx((830 + 11618) / 300)
        (index, body), = client.asked
        assert index == "docs-v2"  # the concrete index: the statistics of an alias's are not asked for
        assert body == field_statistics_body(["title", "text"])


@pytest.mark.parametrize("failure", [AuthorizationException(403, "security_exception", {}), RuntimeError("odd"),
                                     AttributeError("termvectors")])
def test_a_mean_that_cannot_be_read_is_unknown_and_the_index_still_searchable(failure):
    info = Searcher(client=StatisticsClient(failure)).index_info("docs")
    assert info.document_terms is None and info.text_fields == ["title", "text"]
    assert _read_async(AsyncStatisticsClient(failure)) is None
    # A client without the API at all (an older or a stand-in client).
    assert Searcher(client=SimpleNamespace(indices=SimpleNamespace(get_mapping=lambda index: MAPPINGS))
                    ).index_info("docs").document_terms is None
