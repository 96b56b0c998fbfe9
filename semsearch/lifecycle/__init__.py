"""Changing an index that already holds documents (layer 5): ``migrate`` enables vectors, migrates to
another model and rolls back; ``backfill`` encodes the documents already there; ``bodies`` their request bodies."""
