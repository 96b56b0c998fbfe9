"""Documents into the index (layer 3): ``documents`` reads and validates input, ``pipeline`` encodes and
writes in-process, ``bulk`` is the bulk writer (where the vector is written), ``write_schedule`` decides
whether writing overlaps encoding."""
