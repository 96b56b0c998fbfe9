"""Ingest through Celery workers (layer 4): ``producer`` sends batches and collects results, ``worker`` is
what a worker process does with one, ``payloads`` the message content, ``celery_app`` the configuration
of the app, ``streaming`` the ``submit``/``delete`` calls from application code."""
