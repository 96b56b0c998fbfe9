"""semsearch: semantic and hybrid search for an existing OpenSearch cluster, from the outside."""

from semsearch.distributed.streaming import SubmitResult, delete, submit
from semsearch.encoding.encoder import Encoder
from semsearch.encoding.model_folder import Fingerprint
from semsearch.errors import (
    BusyError,
    ClusterError,
    ConfigurationError,
    IndexMismatchError,
    InputError,
    ModelError,
    SemsearchError,
)
from semsearch.query.async_search import AsyncSearcher
from semsearch.query.fusion import FusionChoice, FusionConfig
from semsearch.query.plan import SearchRequest
from semsearch.query.search import Hit, Hits, Searcher
from semsearch.settings import Settings
from semsearch.version import __version__
from semsearch.writing.documents import DocumentSchema, Rejection

__all__ = [
    "AsyncSearcher",
    "BusyError",
    "ClusterError",
    "ConfigurationError",
    "DocumentSchema",
    "Encoder",
    "Fingerprint",
    "FusionChoice",
    "FusionConfig",
    "Hit",
    "Hits",
    "IndexMismatchError",
    "InputError",
    "ModelError",
    "Rejection",
    "SearchRequest",
    "Searcher",
    "SubmitResult",
    "SemsearchError",
    "Settings",
    "__version__",
    "delete",
    "submit",
]
