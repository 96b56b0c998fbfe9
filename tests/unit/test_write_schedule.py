"""When the pipeline writes: the pure decision of semsearch.writing.write_schedule."""

import pytest

from semsearch import Settings
from semsearch.writing.write_schedule import after_encoding_writers, host_is_this_machine, writes_while_encoding

OWN = frozenset({"builder-7", "builder-7.example.net"})


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.localdomain", "127.0.0.1", "127.1.2.3",
                                  "::1", "[::1]", "::ffff:127.0.0.1", "0.0.0.0", "api.localhost", "builder-7",
                                  "Builder-7.example.net."])
def test_hosts_of_this_machine(host):
    assert host_is_this_machine(host, OWN)


@pytest.mark.parametrize("host", ["search.example.net", "10.0.0.5", "opensearch", "builder-8", "", "::2"])
def test_hosts_elsewhere(host):
    assert not host_is_this_machine(host, OWN)


@pytest.mark.parametrize("device, url, expected", [
    ("cpu", "http://localhost:9200", False),  # a CPU encoder and the cluster share cores: after each batch
    ("cpu", "https://admin:secret@127.0.0.1:9200", False),
    ("cpu", "https://builder-7:9200", False),
    ("cpu", "https://search.example.net:9200", True),  # the cluster has cores of its own
    ("cuda", "http://localhost:9200", True),  # a GPU encoder leaves the CPU to the cluster
    ("mps", "http://localhost:9200", True),
])
def test_auto_writes_after_each_batch_only_for_a_cpu_encoder_beside_the_cluster(device, url, expected):
    assert writes_while_encoding("auto", device, url, OWN) is expected


@pytest.mark.parametrize("schedule, expected", [("while_encoding", True), ("after_encoding", False)])
def test_an_explicit_schedule_wins(schedule, expected):
    for device, url in (("cpu", "http://localhost:9200"), ("cuda", "https://search.example.net")):
        assert writes_while_encoding(schedule, device, url, OWN) is expected


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="choose one of auto, while_encoding, after_encoding"):
        writes_while_encoding("sometimes", "cpu", "http://localhost:9200", OWN)


def test_the_setting_reads_the_environment(monkeypatch):
    monkeypatch.delenv("SEMSEARCH_WRITE_SCHEDULE", raising=False)
    assert Settings().write_schedule == "auto"
    monkeypatch.setenv("SEMSEARCH_WRITE_SCHEDULE", "while_encoding")
    assert Settings().write_schedule == "while_encoding"
    monkeypatch.setenv("SEMSEARCH_WRITE_SCHEDULE", "never")
    with pytest.raises(ValueError):
        Settings()


@pytest.mark.parametrize("cores, writers", [(1, 1), (2, 2), (3, 3), (16, 4)])
def test_one_writer_per_core_at_most_four(cores, writers):
    assert after_encoding_writers(cores) == writers


def test_this_machine_is_recognised_by_its_own_name():
    import socket

    assert host_is_this_machine(socket.gethostname())
    assert not writes_while_encoding("auto", "cpu", f"http://{socket.gethostname()}:9200")
