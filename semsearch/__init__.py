"""semsearch: semantic and hybrid search for an existing OpenSearch cluster, from the outside."""

from .config import Settings
from .encoder import Encoder
from .model_folder import Fingerprint
from .documents import DocumentSchema, Rejection
from .fusion import FusionConfig
from .search import Hit, Searcher
from .async_search import AsyncSearcher
from .search_plan import SearchRequest
from .streaming import SubmitResult, delete, submit
from .errors import (
    ClusterError,
    ConfigurationError,
    IndexMismatchError,
    InputError,
    ModelError,
    SemsearchError,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncSearcher",
    "ClusterError",
    "ConfigurationError",
    "DocumentSchema",
    "Encoder",
    "Fingerprint",
    "FusionConfig",
    "Hit",
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
