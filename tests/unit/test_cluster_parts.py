"""Pure parts of running against a multi-node cluster (issue 18): node URLs, partial answers, replicas."""

import pytest
from pydantic import ValidationError

from semsearch import FusionChoice, Hit, Hits, Settings
from semsearch.engines.opensearch import connection_kwargs, redact_url, secret_values
from semsearch.index.manage import copies_to_wait_for, create_index, replicas_for
from semsearch.query.search import msearch_results, server_answer
from semsearch.query.shards import PartialResultsError, settle_partial, shortfall
from semsearch.writing.write_schedule import writes_while_encoding


def test_several_node_urls_are_one_setting_and_every_node_a_host():
    settings = Settings(opensearch_url=" http://a:9200/, http://b:9200 ,http://c:9200")
    assert settings.opensearch_urls == ["http://a:9200", "http://b:9200", "http://c:9200"]
    assert settings.opensearch_url == "http://a:9200,http://b:9200,http://c:9200"
    assert connection_kwargs(settings)["hosts"] == settings.opensearch_urls
    assert Settings(opensearch_url="http://one:9200/").opensearch_urls == ["http://one:9200"]
    with pytest.raises(ValidationError, match="must all be http:// or all https://"):
        Settings(opensearch_url="http://a:9200,https://b:9200")
    with pytest.raises(ValidationError, match="each with its http:// or https://"):
        Settings(opensearch_url="http://a:9200,b:9200")
    with pytest.raises(ValidationError, match="must start with http") as refused:
        Settings(opensearch_url="u:se,cret@a:9200")
    assert "se,cret" not in str(refused.value.errors(include_input=False))
    # A comma inside a password is not a separator.
    assert Settings(opensearch_url="http://u:se,cret@a:9200").opensearch_urls == ["http://u:se,cret@a:9200"]
    with pytest.raises(ValidationError, match="empty"):
        Settings(opensearch_url=" , ")


def test_passwords_in_any_node_url_stay_secret():
    settings = Settings(opensearch_url="https://u:first-secret@a:9200,https://u:second,secret@b:9200")
    assert redact_url(settings.opensearch_url) == "https://u:***@a:9200,https://u:***@b:9200"
    assert redact_url("redis://:pa,ss@h:6379/0") == "redis://:***@h:6379/0"
    assert {"first-secret", "second,secret"} <= set(secret_values(settings))


def test_a_cluster_with_any_node_on_this_machine_counts_as_local():
    own = frozenset({"thishost"})
    assert not writes_while_encoding("auto", "cpu", "http://far:9200,http://localhost:9201", own)
    assert writes_while_encoding("auto", "cpu", "http://far:9200,http://other:9200", own)


def test_replicas_follow_the_data_nodes_unless_set():
    assert replicas_for(3, None) == 1 and replicas_for(2, None) == 1
    assert replicas_for(1, None) is None and replicas_for(None, None) is None  # single node, or health unreadable
    assert replicas_for(3, 0) == 0 and replicas_for(1, 2) == 2


def test_a_new_replicated_index_waits_for_every_copy_the_cluster_can_place():
    assert copies_to_wait_for(1, 3) == 2 and copies_to_wait_for(2, 3) == 3
    assert copies_to_wait_for(2, 2) == 2  # a replica beyond the data nodes could never start: not waited for
    assert copies_to_wait_for(1, 1) == 1
    assert copies_to_wait_for(0, 3) is None and copies_to_wait_for(None, 3) is None  # no replicas: the default
    assert copies_to_wait_for(1, None) is None  # data nodes unknown


def test_shortfall_counts_failed_and_unanswered_shards_not_skipped_ones():
    assert shortfall({"_shards": {"total": 3, "successful": 3, "skipped": 0, "failed": 0}}) is None
    # Skipped (pre-filtered) shards count as successful too: a whole answer; one lost beside them is not.
    assert shortfall({"_shards": {"total": 5, "successful": 5, "skipped": 3, "failed": 0}}) is None
    assert shortfall({"_shards": {"total": 3, "successful": 2, "skipped": 1, "failed": 0}}) == \
        "1 of 3 shards did not answer"
    assert shortfall({}) is None
    failed = {"_shards": {"total": 3, "successful": 2, "skipped": 0, "failed": 1,
                          "failures": [{"shard": 1, "reason": {"type": "node_not_connected_exception"}}]}}
    assert shortfall(failed) == "1 of 3 shards did not answer (node_not_connected_exception)"
    # A shard with no copy left may be missing without being listed as failed.
    assert shortfall({"_shards": {"total": 3, "successful": 2, "failed": 0}}) == "1 of 3 shards did not answer"
    assert shortfall({"_shards": {"total": 1, "successful": 1}, "timed_out": True}) == "the search timed out"


def test_partial_hits_are_flagged_or_refused_by_the_setting():
    whole = settle_partial([Hit("a", 1.0), Hit("b", 0.5)], [], "fail", "idx")
    assert [h.id for h in whole] == ["a", "b"] and not whole.partial and not any(h.partial for h in whole)
    flagged = settle_partial([Hit("a", 1.0)], ["keyword: 1 of 3 shards did not answer"], "flag", "idx")
    assert flagged.partial and flagged[0].partial and flagged.shortfalls == ("keyword: 1 of 3 shards did not answer",)
    empty = settle_partial([], ["semantic: 1 of 3 shards did not answer"], "flag", "idx")
    assert empty == [] and empty.partial  # no hit, and still not passed off as a whole answer
    with pytest.raises(PartialResultsError, match=r"search on 'idx' was partial: keyword: 1 of 3 shards"):
        settle_partial([Hit("a", 1.0)], ["keyword: 1 of 3 shards did not answer"], "fail", "idx")
    with pytest.raises(ValidationError):
        Settings(partial_results="ignore")


def test_a_partial_answer_keeps_how_it_was_fused():
    hits = Hits([Hit("a", 1.0)])
    hits.fusion = FusionChoice("rrf", {"keyword": 0.25, "semantic": 1.0}, "strict")
    settled = settle_partial(hits, ["keyword: 1 of 2 shards failed"], "flag", "idx")
    assert settled.partial and settled.fusion == hits.fusion and settled[0].partial


def test_every_answer_of_a_search_is_checked_for_missing_shards():
    hit = {"_id": "a", "_score": 1.0}
    response = {"responses": [
        {"hits": {"hits": [hit]}, "_shards": {"total": 2, "successful": 2, "failed": 0}},
        {"hits": {"hits": [hit]}, "_shards": {"total": 2, "successful": 1, "failed": 1, "failures": []}}]}
    shortfalls: list[str] = []
    results = msearch_results({"keyword": {}, "semantic": {}}, response, "idx", shortfalls)
    assert results["semantic"] == [hit] and shortfalls == ["semantic: 1 of 2 shards did not answer"]
    server: list[str] = []
    assert server_answer({"hits": {"hits": [hit]}, "_shards": {"total": 1, "successful": 0, "failed": 1}},
                         server) == [hit]
    assert server == ["server-side hybrid: 1 of 1 shards did not answer"]


class _RecordingClient:
    """Cluster health and index creation only: what create_index asks of the cluster (no I/O)."""

    def __init__(self, data_nodes: int, started: bool = True):
        self._data_nodes, self._started, self.created = data_nodes, started, []
        self.cluster = self
        self.indices = self

    def health(self, **_):
        return {"number_of_data_nodes": self._data_nodes}

    def create(self, **kwargs):
        self.created.append(kwargs)
        return {"acknowledged": True, "shards_acknowledged": self._started}


def _create(client, **kwargs):
    fingerprint = {"dimension": 4, "normalize": True, "max_seq_length": 8}
    create_index(client, "docs", fingerprint=fingerprint, text_fields=["text"], vector_field="embedding",
                 engine="lucene", **kwargs)
    return client.created[-1]


def test_create_index_waits_for_the_replicas_only_on_a_cluster_that_can_place_them(caplog):
    sent = _create(_RecordingClient(3))
    assert sent["wait_for_active_shards"] == "2" and sent["timeout"] == "60s" and sent["request_timeout"] == 90
    assert sent["body"]["settings"]["index"]["number_of_replicas"] == 1
    single = _create(_RecordingClient(1))
    assert not {"wait_for_active_shards", "timeout", "request_timeout"} & set(single)
    assert "wait_for_active_shards" not in _create(_RecordingClient(3), replicas=0)
    with caplog.at_level("WARNING"):
        _create(_RecordingClient(3, started=False))
    assert "not all started within 60s" in caplog.text
