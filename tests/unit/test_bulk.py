import json

import numpy as np

from semsearch.writing.bulk import bulk_entry, chunk_entries, item_reason
from semsearch.writing.documents import Document


def doc(i, text="hello"):
    return Document(id=f"d{i}", source={"text": text}, text=text, content_hash="h", origin=f"f:{i}")


def test_bulk_entry_is_two_ndjson_lines_with_vector_and_hash():
    vector = np.array([0.123456789, -1.0, 0.0], dtype=np.float32)
    action, source, rest = bulk_entry("idx", doc(1), vector, "embedding").split("\n")
    assert rest == ""
    assert json.loads(action) == {"index": {"_index": "idx", "_id": "d1"}}
    body = json.loads(source)
    assert body["text"] == "hello" and body["semsearch_hash"] == "h"
    assert np.allclose(body["embedding"], vector, atol=1e-7)


def test_vector_spliced_into_empty_source():
    d = Document(id="x", source={}, text="t", content_hash="h")
    body = json.loads(bulk_entry("i", d, np.zeros(2, dtype=np.float32), "v").split("\n")[1])
    assert body == {"semsearch_hash": "h", "semsearch_id": "x", "v": [0.0, 0.0]}


def test_chunks_respect_count_and_bytes():
    entries = ["x" * 10] * 7
    assert list(chunk_entries(entries, max_docs=3, max_bytes=1000)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunk_entries(entries, max_docs=100, max_bytes=25)) == [[0, 1], [2, 3], [4, 5], [6]]
    # An entry larger than the byte limit still goes, alone.
    assert list(chunk_entries(["y" * 50, "z"], max_docs=10, max_bytes=20)) == [[0], [1]]


def test_an_item_the_engine_did_not_write_says_why_in_its_words():
    unavailable = {"status": 503, "error": {"type": "unavailable_shards_exception",
                                            "reason": "[idx][0] primary shard is not active Timeout: [1m]"}}
    assert item_reason(unavailable) == "unavailable_shards_exception: [idx][0] primary shard is not active Timeout: [1m]"
    parsing = {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse",
                                        "caused_by": {"type": "illegal_argument_exception", "reason": "bad date"}}}
    assert item_reason(parsing) == "mapper_parsing_exception: failed to parse (bad date)"
    assert item_reason({"status": 429}) == "429"  # no error body: its status
    assert item_reason({"status": 500, "error": "plain text"}) == "plain text"


def test_an_ingest_whose_closing_refresh_fails_says_so_without_secrets(capsys):
    # `semsearch ingest` refreshes the index when it ends (what it wrote searchable at once); a refused refresh
    # fails no ingest (its documents are indexed), and the warning names no password.
    from opensearchpy.exceptions import AuthorizationException

    from semsearch.cli.commands import _make_searchable
    from semsearch.settings import Settings

    class RefusingIndices:
        def refresh(self, index):
            raise AuthorizationException(403, "security_exception",
                                         {"error": "no permission for http://ingest:hunter2-pw@node:9200"})

    class Client:
        indices = RefusingIndices()

    _make_searchable(Client(), "docs", Settings(opensearch_password="hunter2-pw"))
    warning = capsys.readouterr().err
    assert warning.startswith("warning: the documents are indexed in 'docs', but permission denied (403)")
    assert "searchable once the index is refreshed" in warning and "hunter2-pw" not in warning


def test_a_vector_update_message_carries_the_version_read_and_not_the_source():
    # A backfill through the workers: the worker updates the vectors of a document read from the index, under
    # the version it was read at, so the application's write since wins; the source never travels.
    from semsearch.distributed.payloads import document_from_payload, document_payload
    from semsearch.writing.documents import VersionedDocument

    read = VersionedDocument(id="a", source={"text": "old", "tag": "x"}, text="old", content_hash="h", origin="i/a",
                             seq_no=7, primary_term=2, stored_hash="g")
    message = json.loads(json.dumps(document_payload(read, "vectors")))
    assert message["source"] == {} and (message["seq_no"], message["primary_term"]) == (7, 2)
    received = document_from_payload(message)
    assert isinstance(received, VersionedDocument) and (received.seq_no, received.primary_term) == (7, 2)
    assert received.stored_hash == "g"
    assert received.text == "old" and received.content_hash == "h"
    # An ingest's message is as before: the whole source, no version (so a worker writes the whole document).
    plain = document_from_payload(json.loads(json.dumps(document_payload(read))))
    assert type(plain) is Document and plain.source == read.source
    try:
        document_payload(read, "everything")
    except ValueError as exc:
        assert "documents, vectors" in str(exc)
    else:
        raise AssertionError("an unknown write kind was accepted")


def test_a_vector_update_that_lost_to_the_application_comes_back_as_a_conflict_not_a_failure():
    from semsearch.distributed.payloads import result_from_payload, result_payload
    from semsearch.writing.documents import VersionedDocument
    from semsearch.writing.vector_updates import VectorUpdateWriter

    class Cluster:
        """Answers a bulk request item by item as OpenSearch does when documents changed or went meanwhile, and
        an mget with the content hashes the documents hold now."""

        def __init__(self):
            self.bodies, self.looked_up = [], []

        def bulk(self, body, refresh=False):
            self.bodies.append(body)
            conflict = {"status": 409, "error": {"type": "version_conflict_engine_exception",
                                                 "reason": "version conflict, required seqNo [3]"}}
            return {"errors": True, "items": [
                {"update": {"_id": "d1", "status": 200}},
                {"update": {"_id": "d2", **conflict}},
                {"update": {"_id": "d3", "status": 404, "error": {
                    "type": "document_missing_exception", "reason": "[d3]: document missing"}}},
                {"update": {"_id": "d4", "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse"}}},
                {"update": {"_id": "d5", **conflict}},
                {"update": {"_id": "d6", **conflict}}]}

        def mget(self, index, body, _source_includes):
            self.looked_up.append(body["ids"])
            now = {"d2": "app-text", "d5": "new"}  # d5: this update's hash, written by an earlier try of it
            return {"docs": [{"_id": i, "found": True, "_source": {"semsearch_hash": now[i]}} for i in body["ids"]]}

    def read(i, stored):
        return VersionedDocument(id=f"d{i}", source={}, text="t", content_hash="new", seq_no=3, primary_term=1,
                                 stored_hash=stored)

    cluster = Cluster()
    writer = VectorUpdateWriter(cluster, "idx", "v")
    # d6 was read with the hash this update writes (a backfill --all): a lost update of it stays a conflict.
    docs = [read(1, "old"), read(2, "old"), read(3, "old"), read(4, "old"), read(5, "old"), read(6, "new")]
    result = writer.write(docs, np.zeros((6, 2), dtype=np.float32))
    assert result.indexed == 2 and result.conflicts == ["d2", "d6"] and result.gone == 1
    assert [(d.id, reason) for d, reason in result.failed] == [("d4", "mapper_parsing_exception: failed to parse")]
    assert cluster.looked_up == [["d2", "d5"]]
    assert all(json.loads(line) for line in cluster.bodies[0].splitlines())
    assert '"update"' in cluster.bodies[0] and '"index"' not in cluster.bodies[0]
    # A worker's answer keeps them apart too, so the producer neither dead-letters nor forgets a lost update.
    back = result_from_payload(json.loads(json.dumps(result_payload(result))), docs)
    assert back.conflicts == ["d2", "d6"] and back.gone == 1 and [d.id for d, _ in back.failed] == ["d4"]


def test_a_document_read_with_custom_routing_is_written_and_deleted_with_it():
    from semsearch.distributed.payloads import document_from_payload, document_payload
    from semsearch.writing.bulk import smile_bulk_entry
    from semsearch.writing.documents import VersionedDocument
    from semsearch.writing.vector_updates import update_entry

    routed = VersionedDocument(id="a", source={"text": "t"}, text="t", content_hash="h", routing="user7")
    vector = np.zeros(2, dtype=np.float32)
    assert json.loads(bulk_entry("idx", routed, vector, "v").split("\n")[0]) == {
        "index": {"_index": "idx", "_id": "a", "routing": "user7"}}
    assert json.loads(bulk_entry("idx", doc(1), vector, "v").split("\n")[0]) == {"index": {"_index": "idx", "_id": "d1"}}
    head = json.loads(update_entry("idx", "a", vector, vector_field="v", content_hash="h", routing="user7")
                      .split("\n")[0])
    assert head == {"update": {"_index": "idx", "_id": "a", "routing": "user7"}}
    assert document_from_payload(json.loads(json.dumps(document_payload(routed, "vectors")))).routing == "user7"
    entry = smile_bulk_entry("idx", routed, vector, "v")
    assert b"routing" in entry and b"user7" in entry


def test_stored_hashes_are_looked_up_with_each_documents_routing():
    from semsearch.writing.bulk import BulkWriter

    class Cluster:
        def __init__(self):
            self.bodies = []

        def mget(self, index, body, _source_includes):
            self.bodies.append(body)
            return {"docs": [{"_id": "a", "found": True, "_source": {"semsearch_hash": "h"}}]}

    cluster = Cluster()
    writer = BulkWriter(cluster, "idx", "v")
    assert writer.stored_hashes(["a", "b"], {"a": "user7", "b": None}) == {"a": "h"}
    assert writer.stored_hashes(["a"], {"a": None}) == {"a": "h"}
    assert cluster.bodies == [{"docs": [{"_index": "idx", "_id": "a", "routing": "user7"}, {"_index": "idx", "_id": "b"}]},
                              {"ids": ["a"]}]
