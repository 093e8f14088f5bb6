"""Protocols every vendor implementation satisfies. Nothing outside ``protostar.llm`` names a vendor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from django.conf import settings

from protostar.llm.timing import timed_embedder
from protostar.seams import seam

if TYPE_CHECKING:
    import numpy as np

# A 1-D float vector: a list of floats (remote embedders) or a float32 numpy row (the bundled embedder, which saves
# converting 384 floats per chunk into Python objects). pgvector and ``numpy.asarray`` accept both; call
# ``list(map(float, v))`` where plain JSON is needed.
Vector: TypeAlias = "list[float] | np.ndarray"


class LLMError(Exception):
    """A model call failed in a way the user should hear about (readable ``str()``)."""

    def __init__(self, detail: str, *, code: str = "llm_error", transient: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.transient = transient


@runtime_checkable
class Embedder(Protocol):
    model_name: str
    dimensions: int

    def embed_passages(self, texts: Sequence[str]) -> list[Vector]:
        """Vectors for document chunks (passage mode)."""
        ...

    def embed_query(self, text: str) -> Vector:
        """Vector for a search query (query mode)."""
        ...


@runtime_checkable
class SparseEmbedder(Protocol):
    """An embedder that also produces sparse "latent term" vectors ({dimension index: weight}), a third retrieval
    list that bridges languages better than the dense vectors of small multilingual models."""

    sparse_dimensions: int

    def embed_passages_sparse(self, texts: Sequence[str]) -> list[dict[int, float]]: ...

    def embed_query_sparse(self, text: str) -> dict[int, float]: ...


@dataclass(frozen=True)
class Passage:
    """A retrieved passage as the answerer sees it: ``label`` is how the answer cites it, e.g. ``S1``."""

    label: str
    title: str
    text: str
    page: int | None = None
    section: str = ""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class ChatRequest:
    """Everything a chat model may use: the rendered messages plus the structured passages and question."""

    messages: list[dict[str, str]]
    passages: Sequence[Passage] = field(default_factory=list)
    question: str = ""
    language: str = "en"
    # What the question is about when it only makes sense in its conversation ("and the second one?"): the
    # standalone search query. Models that pick text themselves (the extractive one) match against it.
    focus: str = ""


class TokenStream(Protocol):
    """An iterator of text pieces that can be closed from another thread to stop generation promptly."""

    usage: Usage

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class PieceSink(Protocol):
    """Where a model that streams on the process's event loop writes its pieces itself (no thread hand-off per
    piece). ``write`` runs on that loop; pieces that arrive while a write is in flight are joined into the next."""

    async def write(self, text: str) -> None: ...


class SinkStream(Protocol):
    usage: Usage

    def wait_done(self) -> None:
        """Block until the stream has ended and every piece was written; raise its ``LLMError``, or what the sink
        raised. Returns normally after ``close()``."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SinkChatModel(Protocol):
    """A chat model that can also stream straight into a ``PieceSink`` (the OpenAI-compatible one does)."""

    def stream_to(self, request: ChatRequest, sink: PieceSink) -> SinkStream: ...


@runtime_checkable
class ChatModel(Protocol):
    model_name: str

    def stream(self, request: ChatRequest) -> TokenStream:
        """Start generating; iterate the result for text pieces. Raises ``LLMError`` on vendor faults, from this call
        or while iterating (a remote model connects in the background so that ``close()`` works from the start)."""
        ...

    def complete(self, request: ChatRequest) -> tuple[str, Usage]:
        """Generate the whole reply at once (used by the summarizer)."""
        ...


get_embedder = seam("EMBEDDER_BACKEND", Embedder, wrap=timed_embedder)
get_chat_model = seam("CHAT_MODEL_BACKEND", ChatModel)


def get_sparse_embedder() -> SparseEmbedder | None:
    """The embedder's sparse side, when it has one and the sparse list is on (SEARCH_SPARSE_WEIGHT > 0)."""
    embedder = get_embedder()
    if settings.SEARCH_SPARSE_WEIGHT > 0 and isinstance(embedder, SparseEmbedder):
        return embedder
    return None
