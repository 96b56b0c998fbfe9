"""The exceptions semsearch raises, in one place.

SemsearchError
├── ConfigurationError      settings or arguments that cannot work (names the valid choices)
│   └── IndexNotFoundError          the index named does not exist
├── ModelError              a model folder that cannot be loaded or is not supported
├── IndexMismatchError      an index built for another model / dimension than the encoder's
├── ClusterError            the cluster refused or could not be reached
│   ├── ClusterUnreachableError      no connection (refused, timed out, closed)
│   ├── AuthenticationError          401, or 403 from the security layer: credentials refused
│   ├── QueryRejectedError           the cluster refused a search as malformed (400: a filter it cannot parse)
│   └── TLSError                     the TLS layer failed
│       ├── CertificateVerificationError   the server's certificate is not trusted (SEMSEARCH_CA_CERTS)
│       ├── ClientCertificateError         the server wants / refused our client certificate
│       └── SchemeMismatchError            http:// to a TLS port, or https:// to a plain one
├── InputError              a document or query file that cannot be read
└── BusyError               another lifecycle command is working on the name (semsearch.lifecycle.lease)

semsearch.engines.opensearch.explain_transport_error turns opensearch-py's exceptions into these.
"""

from __future__ import annotations


class SemsearchError(Exception):
    """Base class of every error semsearch raises on purpose."""


class ConfigurationError(SemsearchError):
    pass


class IndexNotFoundError(ConfigurationError):
    pass


class ModelError(SemsearchError):
    pass


class IndexMismatchError(SemsearchError):
    pass


class ClusterError(SemsearchError):
    pass


class InputError(SemsearchError):
    pass


class ClusterUnreachableError(ClusterError):
    pass


class AuthenticationError(ClusterError):
    pass


class QueryRejectedError(ClusterError):
    pass


class TLSError(ClusterError):
    pass


class CertificateVerificationError(TLSError):
    pass


class ClientCertificateError(TLSError):
    pass


class SchemeMismatchError(TLSError):
    pass


class BusyError(SemsearchError):
    pass
