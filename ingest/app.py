"""The Celery app of the ingest queue, as the worker service loads it (``celery -A ingest.app``).

Its configuration is semsearch.distributed.celery_app; the work is in semsearch.distributed.worker.
"""

from __future__ import annotations

from semsearch.distributed.celery_app import ENCODE_QUEUE, celery_config, make_app

__all__ = ["ENCODE_QUEUE", "app", "celery_config", "make_app"]

app = make_app()
