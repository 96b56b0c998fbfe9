"""The package version, at the bottom of the layers so that any module may name it (index ``_meta``)."""

__version__ = "0.1.0"
