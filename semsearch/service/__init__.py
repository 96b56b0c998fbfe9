"""``semsearch serve`` (layer 6): semantic search over HTTP for applications in any language.

``app`` is the ASGI application (REST endpoints, metrics, the search page, the proxy route); ``neural``
rewrites OpenSearch ``neural`` query clauses into ``knn`` clauses (pure); ``proxy`` passes every other
request to the cluster; ``batching`` encodes concurrent queries in micro-batches; ``metrics`` counts in
Prometheus' text format; ``static/`` is the page.
"""
