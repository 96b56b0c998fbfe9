"""Malformed lines: the valid ones are indexed, each bad one reported with file, line and reason."""

import json

from .conftest import run_cli


def test_malformed_lines_are_reported_and_the_rest_indexed(client, index_name, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"_id": "ok-1", "title": "Alpha", "text": "The first good document."}\n'
        b'{"_id": "bad-json", "text": "unterminated\n'
        b'{"_id": "ok-2", "title": "Beta", "text": "The second good document."}\n'
        b'"just a string"\n'
        b'{"_id": "bad-type", "text": 42}\n'
        b'{"_id": "bad-empty", "title": "", "text": "   "}\n'
        b'{"_id": "ok-3", "text": "The third good document."}\n')
    dead = tmp_path / "rejected.jsonl"
    result = run_cli("ingest", str(path), "--index", index_name, "--dead-letter", str(dead))
    assert result.returncode == 1, "exit status must be non-zero when some documents were not indexed"
    for line, reason in [(2, "malformed JSON"), (4, "expected a JSON object"), (5, "text field must be a string"),
                         (6, "no text")]:
        assert f"{path}:{line}: {reason}" in result.stderr, result.stderr
    assert "indexed 3 of 7" in result.stderr and "rejected 4" in result.stderr
    client.indices.refresh(index=index_name)
    ids = {h["_id"] for h in client.search(index=index_name, body={"size": 10})["hits"]["hits"]}
    assert ids == {"ok-1", "ok-2", "ok-3"}
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 4, 5, 6]
    assert records[2]["field"] == "text"

    # Run again (the file fixed in part): appended, the earlier run's lines kept and told apart.
    path.write_bytes(path.read_bytes().replace(b'"text": 42', b'"text": "now a string"'))
    again = run_cli("ingest", str(path), "--index", index_name, "--dead-letter", str(dead))
    assert again.returncode == 1
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [r["line"] for r in records] == [2, 4, 5, 6, 2, 4, 6]
    runs = [r["run"] for r in records]
    assert len(set(runs[:4])) == 1 and len(set(runs[4:])) == 1 and runs[0] != runs[4]
    assert (f'dead letters in {dead} (appended after 4 from earlier runs; each line\'s "run" says which: this one\'s '
            f'is {runs[4]})') in again.stderr, again.stderr


def test_clean_file_exits_zero(client, index_name, tmp_path):
    path = tmp_path / "clean.jsonl"
    path.write_text('{"_id": "a", "text": "alpha"}\n{"_id": "b", "text": "beta"}\n')
    result = run_cli("ingest", str(path), "--index", index_name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / f"{index_name}.deadletter.jsonl").exists()


def test_stdin_input(client, index_name):
    result = run_cli("ingest", "-", "--index", index_name, input='{"_id": "s1", "text": "from stdin"}\n{oops\n')
    assert result.returncode == 1
    assert "<stdin>:2: malformed JSON" in result.stderr
    client.indices.refresh(index=index_name)
    assert client.count(index=index_name)["count"] == 1
