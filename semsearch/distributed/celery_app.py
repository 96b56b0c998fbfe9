"""The Celery app of the ingest queue (configuration only): the producer, the workers and the stream
scheduler all build it here. Its tasks are in ingest/tasks.py, which Celery imports by name."""

from __future__ import annotations

from celery import Celery

from semsearch.settings import Settings

ENCODE_QUEUE = "encode"
# A task encodes and writes one batch: seconds on a GPU, under a minute on a slow CPU.
TASK_SOFT_TIME_LIMIT = 240
TASK_TIME_LIMIT = 300
# Redis hands an unacknowledged message to another worker after this long; it must exceed the
# longest task, or a slow batch would run twice at once.
VISIBILITY_TIMEOUT = 2 * TASK_TIME_LIMIT


def celery_config(broker_url: str) -> dict:
    """Celery settings (pure): JSON only, late acks, prefetch 1, one dedicated queue."""
    return {
        "broker_url": broker_url,
        "result_backend": broker_url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],  # a pickled message is refused, never executed
        "result_accept_content": ["json"],
        "task_acks_late": True,  # a batch is acknowledged only once written
        "task_reject_on_worker_lost": True,  # a killed worker's batch goes back to the queue
        "worker_prefetch_multiplier": 1,  # long GPU tasks: no hoarding
        "task_default_queue": ENCODE_QUEUE,
        "task_routes": {"semsearch.*": {"queue": ENCODE_QUEUE}},
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT,
        "task_time_limit": TASK_TIME_LIMIT,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "task_track_started": True,
    }


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    broker = settings.broker_url or "redis://127.0.0.1:6379/0"
    app = Celery("semsearch", include=["ingest.tasks"])
    app.conf.update(celery_config(broker))
    return app
