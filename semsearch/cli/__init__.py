"""The ``semsearch`` command line: ``commands`` (index, ingest, worker, search, eval), ``lifecycle``
(enable-vectors, backfill, migrate), and ``common`` (what they share)."""

from semsearch.cli.commands import main

__all__ = ["main"]
