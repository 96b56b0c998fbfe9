"""Queries (layer 3): ``bodies`` builds the request bodies, ``plan`` says what to send for a request and
reads the answers, ``fusion`` merges the keyword and semantic lists, ``server_hybrid`` runs fusion in the
cluster where it can; ``search`` and ``async_search`` are the two searchers (only their I/O differs);
``evaluation`` and ``tuning`` score rankings against judgments."""
