"""The OpenAI vendors through the real SDK against the scripted server on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from protostar.llm.base import ChatRequest, LLMError, get_chat_model, get_embedder
from protostar.llm.openai import OpenAIChatModel, OpenAIEmbedder
from protostar.tokens import count_tokens
from tests.llmserver import LLMTestServer, split_pieces

REPLY = "Refunds are accepted within 30 days of purchase [S1]. 환불은 구매 후 30일 이내에 가능합니다 [S2]."
REQUEST = ChatRequest(
    messages=[
        {"role": "system", "content": "Answer from the sources."},
        {"role": "user", "content": "[S1] Refund policy text.\n\nWhat is the refund window?"},
    ],
    question="What is the refund window?",
)


def read_until_error(stream) -> tuple[list[str], LLMError | None]:
    pieces: list[str] = []
    try:
        for piece in stream:
            pieces.append(piece)
    except LLMError as exc:
        return pieces, exc
    return pieces, None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Streaming ---------------------------------------------------------------------------------------------------


def test_paced_stream_yields_each_piece_as_it_arrives(remote_llm):
    remote_llm.script(reply=REPLY, tokens_per_second=40)
    pieces, error = read_until_error(get_chat_model().stream(REQUEST))
    assert error is None
    assert pieces == split_pieces(REPLY)


def test_pieces_that_arrived_while_the_reader_was_busy_come_out_joined(remote_llm):
    import time

    remote_llm.script(reply=REPLY)
    stream = get_chat_model().stream(REQUEST)
    pieces = []
    for piece in stream:
        pieces.append(piece)
        time.sleep(0.05)  # a busy consumer: the rest of the answer queues up meanwhile
    assert "".join(pieces) == REPLY
    assert len(pieces) < len(split_pieces(REPLY))


def test_stream_yields_scripted_tokens_in_order(remote_llm):
    remote_llm.script(reply=REPLY)
    stream = get_chat_model().stream(REQUEST)

    pieces, error = read_until_error(stream)

    assert error is None
    assert "".join(pieces) == REPLY
    # The server reported usage in its final chunk: its word counts, not ours.
    assert stream.usage.completion_tokens == len(split_pieces(REPLY))
    assert stream.usage.prompt_tokens == sum(len(m["content"].split()) for m in REQUEST.messages)
    [logged] = remote_llm.requests
    assert logged["stream"] is True
    assert logged["model"] == "protostar-test"
    assert logged["messages"] == REQUEST.messages


def test_usage_is_counted_locally_when_the_server_sends_none(remote_llm):
    remote_llm.script(reply=REPLY, include_usage=False)
    stream = get_chat_model().stream(REQUEST)

    assert "".join(stream) == REPLY
    assert stream.usage.completion_tokens == count_tokens(REPLY)
    prompt = "\n".join(m["content"] for m in REQUEST.messages)
    assert stream.usage.prompt_tokens == count_tokens(prompt)


def test_server_error_raises_after_the_sdk_retries(remote_llm):
    remote_llm.script(fail="500")

    pieces, error = read_until_error(get_chat_model().stream(REQUEST))

    assert pieces == []
    assert error is not None and error.code == "server_error" and error.transient
    assert "HTTP 500" in str(error) and remote_llm.base_url in str(error)
    assert len(remote_llm.requests) == 2  # the first try and LLM_MAX_RETRIES=1 retry


def test_rate_limit_waits_for_retry_after_then_succeeds(remote_llm):
    remote_llm.script(fail="429", retry_after=1, times=1)

    text = "".join(get_chat_model().stream(REQUEST))

    assert text.startswith("This is a test answer") and "[S1]" in text
    first, second = remote_llm.requests
    assert second["received_at"] - first["received_at"] >= 1.0


def test_persistent_rate_limit_maps_to_rate_limited(remote_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    remote_llm.script(fail="429")

    with pytest.raises(LLMError) as caught:
        get_chat_model().complete(REQUEST)

    assert caught.value.code == "rate_limited"
    assert "HTTP 429" in str(caught.value)


def test_closed_port_is_reported_unreachable(settings):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings.LLM_BASE_URL = url
    settings.LLM_MAX_RETRIES = 0
    settings.CHAT_MODEL_BACKEND = "protostar.llm.openai.OpenAIChatModel"

    pieces, error = read_until_error(get_chat_model().stream(REQUEST))

    assert pieces == []
    assert error is not None and error.code == "unreachable"
    assert f"The language model server at {url} is unreachable" in str(error)


def test_stall_mid_stream_hits_the_read_timeout(remote_llm, settings):
    settings.LLM_TIMEOUT = 0.5
    remote_llm.script(reply=REPLY, stall_after_tokens=2)
    started = time.monotonic()

    pieces, error = read_until_error(get_chat_model().stream(REQUEST))

    assert "".join(pieces) == "".join(split_pieces(REPLY)[:2])
    assert error is not None and error.code == "timeout"
    assert "0.5 s" in str(error)
    assert time.monotonic() - started < 5


def test_stalled_completion_times_out_after_the_sdk_retries(remote_llm, settings):
    settings.LLM_TIMEOUT = 0.3
    remote_llm.script(fail="stall")

    with pytest.raises(LLMError) as caught:
        get_chat_model().complete(REQUEST)

    assert caught.value.code == "timeout" and "did not respond within 0.3 s" in str(caught.value)
    assert len(remote_llm.requests) == 2


@pytest.mark.parametrize("fail", ["cut", "abort"])
def test_stream_ending_before_done_raises_interrupted_after_the_partial_text(remote_llm, fail):
    # "cut" ends the HTTP body cleanly (the SDK just stops), "abort" resets the connection mid-body.
    remote_llm.script(reply=REPLY, fail=fail, cut_after_tokens=3)

    pieces, error = read_until_error(get_chat_model().stream(REQUEST))

    assert "".join(pieces) == "".join(split_pieces(REPLY)[:3])
    assert error is not None and error.code == "stream_interrupted"
    assert len(remote_llm.requests) == 1  # a half-delivered answer is not silently retried


def test_close_from_another_thread_ends_a_stalled_stream_within_a_second(remote_llm):
    remote_llm.script(reply=REPLY, stall_after_tokens=2)  # LLM_TIMEOUT is 10 s: only close() can end this
    stream = get_chat_model().stream(REQUEST)
    closed_at: list[float] = []

    def close_soon() -> None:
        time.sleep(0.3)
        closed_at.append(time.monotonic())
        stream.close()

    pieces = []
    for piece in stream:
        pieces.append(piece)
        if "".join(pieces) == "".join(split_pieces(REPLY)[:2]):  # both pieces before the stall, joined or not
            threading.Thread(target=close_soon).start()
    ended_at = time.monotonic()

    assert "".join(pieces) == "".join(split_pieces(REPLY)[:2])
    assert ended_at - closed_at[0] < 1.0
    # The connection itself was cut, not just abandoned: the background reader finished too.
    assert stream.wait(timeout=1.0)


def test_close_during_retry_after_wait_ends_iteration_promptly(remote_llm):
    remote_llm.script(fail="429", retry_after=2, times=1)
    stream = get_chat_model().stream(REQUEST)
    threading.Timer(0.3, stream.close).start()
    started = time.monotonic()

    assert list(stream) == []
    assert time.monotonic() - started < 1.0
    # The SDK's sleep cannot be interrupted; once it returns, the reply is dropped unread.
    assert stream.wait(timeout=5)


def test_non_streaming_completion_returns_text_and_usage(remote_llm):
    remote_llm.script(reply=REPLY)

    text, usage = get_chat_model().complete(REQUEST)

    assert text == REPLY
    assert usage.completion_tokens == len(split_pieces(REPLY))
    assert remote_llm.requests[0]["stream"] is None


@pytest.fixture
def strict_server(settings):
    with LLMTestServer(api_key="right-key", models=["real-model"], strict_models=True) as server:
        settings.LLM_BASE_URL = server.base_url
        settings.LLM_MAX_RETRIES = 0
        settings.LLM_API_KEY = "right-key"
        settings.LLM_MODEL = "real-model"
        yield server


def test_unknown_model_is_a_readable_not_found(strict_server, settings):
    settings.LLM_MODEL = "no-such-model"

    pieces, error = read_until_error(OpenAIChatModel().stream(REQUEST))

    assert pieces == []
    assert error is not None and error.code == "not_found"
    assert "no-such-model" in str(error) and "HTTP 404" in str(error)


def test_wrong_api_key_is_an_auth_error(strict_server, settings):
    settings.LLM_API_KEY = "wrong-key"

    with pytest.raises(LLMError) as caught:
        OpenAIChatModel().complete(REQUEST)

    assert caught.value.code == "auth" and not caught.value.transient
    assert "HTTP 401" in str(caught.value)


def test_correct_key_and_model_are_accepted(strict_server):
    text, _ = OpenAIChatModel().complete(REQUEST)

    assert text.startswith("This is a test answer")


# --- Embeddings --------------------------------------------------------------------------------------------------


def test_embedder_batches_and_returns_vectors_of_the_configured_dimension(remote_llm, settings):
    settings.EMBEDDING_BATCH_SIZE = 2
    texts = ["refund policy", "환불 정책", "shipping times", "배송 기간", "refund policy"]
    embedder = get_embedder()

    vectors = embedder.embed_passages(texts)

    assert [len(v) for v in vectors] == [384] * 5
    assert vectors[0] == vectors[4]  # deterministic
    assert abs(sum(x * x for x in vectors[1]) - 1.0) < 1e-5
    assert [len(r["input"]) for r in remote_llm.requests] == [2, 2, 1]
    assert all(r["dimensions"] is None for r in remote_llm.requests)  # not sent unless asked for
    assert embedder.embed_query("refund policy") == vectors[0]  # no prefixes configured


def test_embedder_reports_a_dimension_mismatch_readably(remote_llm):
    remote_llm.script(embedding_dimensions=256)

    with pytest.raises(LLMError) as caught:
        get_embedder().embed_query("refund policy")

    assert caught.value.code == "dimension_mismatch"
    message = str(caught.value)
    assert "256-dimensional" in message and "EMBEDDING_DIMENSIONS is 384" in message


def test_embedder_sends_dimensions_and_prefixes_when_configured(remote_llm, settings):
    settings.EMBEDDING_DIMENSIONS = 64
    settings.EMBEDDING_REQUEST_DIMENSIONS = True
    settings.EMBEDDING_QUERY_PREFIX = "query: "
    embedder = OpenAIEmbedder()

    vector = embedder.embed_query("refund policy")

    assert len(vector) == 64
    [logged] = remote_llm.requests
    assert logged["dimensions"] == 64 and logged["input"] == ["query: refund policy"]


def test_embedder_server_error_maps_to_llm_error(remote_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    remote_llm.script(fail="503")

    with pytest.raises(LLMError) as caught:
        get_embedder().embed_passages(["a"])

    assert caught.value.code == "server_error"
    assert f"The embedding server at {remote_llm.base_url}" in str(caught.value)


STREAM_AND_EXIT = """
from protostar.llm.base import ChatRequest
from protostar.llm.openai import OpenAIChatModel
stream = OpenAIChatModel().stream(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
print("PIECES", len(list(stream)))
"""


def test_a_process_that_streamed_exits_without_leaked_connections(llm_server):
    """The model's HTTP clients live on the process's background loop; at exit they are closed, so a worker's log
    does not end with "Unclosed client session" / "Unclosed connector" errors."""
    import os
    import subprocess
    import sys

    from tests import conftest

    llm_server.script(reply=REPLY, tokens_per_second=500)
    backend = f"{OpenAIChatModel.__module__}.{OpenAIChatModel.__name__}"
    env = {**os.environ, "LLM_BASE_URL": llm_server.base_url, "CHAT_MODEL_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", STREAM_AND_EXIT],
        cwd=conftest.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split("PIECES", 1)[1].split()[0]) >= 1, done.stdout
    assert "Unclosed" not in done.stderr, done.stderr


def test_prepare_makes_the_process_loops_client_without_calling_the_server(remote_llm):
    from protostar import aio

    model = OpenAIChatModel()
    model.prepare()
    assert aio.background_loop() in model._async_clients
    assert remote_llm.requests == []
