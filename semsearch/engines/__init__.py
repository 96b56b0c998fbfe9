"""The engines seam (layer 1): everything that differs between OpenSearch and Elasticsearch.

``opensearch`` builds the client (the one place that opens connections) and explains transport errors;
``elasticsearch`` adapts the Elasticsearch 8/9 client to it; ``capabilities`` reads what a cluster can do;
``index_body`` and ``es_bodies`` are the index and kNN bodies of each engine; ``smile`` the binary bulk format.
"""
