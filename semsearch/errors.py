"""The exceptions semsearch raises, in one place.

SemsearchError
├── ConfigurationError      settings or arguments that cannot work (names the valid choices)
├── ModelError              a model folder that cannot be loaded or is not supported
├── IndexMismatchError      an index built for another model / dimension than the encoder's
├── ClusterError            the cluster refused or could not be reached
└── InputError              a document or query file that cannot be read
"""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class ConfigurationError(SemsearchError):
    pass


class ModelError(SemsearchError):
    pass


class IndexMismatchError(SemsearchError):
    pass


class ClusterError(SemsearchError):
    pass


class InputError(SemsearchError):
    pass
