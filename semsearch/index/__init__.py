"""A semsearch index (layer 2): ``manage`` creates one for an encoder and reads and checks its ``_meta``;
``passages`` lays out long documents as nested passages."""
