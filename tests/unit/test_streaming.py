"""Streaming's pure parts: which queued operations a drain applies."""

from semsearch.distributed.streaming import latest_per_id


def submit(doc_id: str, text: str) -> dict:
    return {"op": "index", "doc": {"id": doc_id, "text": text}}


def test_a_document_resubmitted_in_one_micro_batch_is_written_once_in_its_last_version():
    group = [submit("a", "v1"), submit("b", "v1"), submit("a", "v2"), submit("c", "v1"), submit("a", "v3")]
    latest = latest_per_id(group)
    assert [(e["doc"]["id"], e["doc"]["text"]) for e in latest] == [("b", "v1"), ("c", "v1"), ("a", "v3")]


def test_distinct_ids_pass_unchanged():
    group = [submit(str(i), "v") for i in range(5)]
    assert latest_per_id(group) == group
