"""The lifecycle lease's pure parts (semsearch.lifecycle.lease); taking, renewing and taking over a lease run
against the real node in tests/integration/test_lifecycle.py."""

import os
import subprocess
import sys
import time

from semsearch.lifecycle.lease import (LEASE_SECONDS, Holder, _process_gone, busy_message, holder_gone, lapsed,
                                      lease_id, lease_name, this_machine)


def test_a_lease_lapses_only_once_its_term_has_passed_since_the_last_renewal():
    holder = Holder("migrate", "h", 1, started_at=0.0, renewed_at=1000.0)
    assert not lapsed(holder, 1000.0 + LEASE_SECONDS)
    assert lapsed(holder, 1000.0 + LEASE_SECONDS + 0.1)
    assert not lapsed(holder, 1003.0, lease_seconds=5)


def test_the_holder_survives_its_document_and_a_foreign_one_is_read_with_defaults():
    holder = Holder("backfill", "node-a", 42, 1.5, 2.5)
    assert Holder.from_body(holder.as_body()) == holder
    assert Holder.from_body({}) == Holder("?", "?", 0, 0.0, 0.0)


def test_the_busy_message_names_the_holder_and_what_to_do():
    holder = Holder("migrate", "node-a", 4242, started_at=0.0, renewed_at=100.0)
    message = busy_message("docs", holder, now=104.0)
    assert message.startswith("'docs' is busy: semsearch migrate (pid 4242 on node-a) has worked on it since "
                              "1970-01-01 00:00:00 UTC, last seen 4 s ago")
    assert f"takes the name over at once, and one run elsewhere once its lease lapses, {LEASE_SECONDS:.0f} s after it was last seen" in message
    assert lease_id("docs") == "lease:docs"


def test_a_process_that_ended_is_gone_and_this_one_is_not():
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    assert _process_gone(int(ended.stdout))
    assert not _process_gone(os.getpid())


def test_a_zombie_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until it has ended, not yet reaped: a zombie
            with open(f"/proc/{child.pid}/stat", encoding="ascii") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert _process_gone(child.pid)
    finally:
        child.wait()


def test_a_versioned_index_shares_the_lease_of_its_base_name():
    assert lease_name("docs-v3") == lease_name("docs") == "docs" and lease_id("docs-v12") == "lease:docs"
    assert lease_name("v2") == "v2" and lease_name("docs-v") == "docs-v" and lease_name("docs-vx1") == "docs-vx1"


def test_only_a_holder_of_this_machine_can_be_known_to_have_ended():
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    pid = int(ended.stdout)
    mine = Holder("migrate", "h", os.getpid(), 0.0, 0.0, machine=this_machine(), token="mine")
    assert this_machine()  # Linux: the boot and the process namespace
    assert holder_gone(Holder("backfill", "h", pid, 0.0, 0.0, machine=this_machine()), mine)
    assert not holder_gone(Holder("backfill", "h", pid, 0.0, 0.0, machine="other-boot:1"), mine)  # same host name
    assert not holder_gone(Holder("backfill", "h", pid, 0.0, 0.0), mine)  # a holder that said no machine
    # This process, with a token none of its live leases holds: a lease of it whose release was lost.
    assert holder_gone(Holder("backfill", "h", os.getpid(), 0.0, 0.0, machine=this_machine(), token="old"), mine)
