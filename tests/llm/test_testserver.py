"""The OpenAI-compatible test server speaks the real wire format and can be scripted in and out of process."""

from __future__ import annotations

import base64
import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.llmserver import remote_requests, remote_reset, remote_script, split_pieces

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Sources: [S2] shipping, [S1] refunds. How long do refunds take?"}]


def sse_events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def test_stream_uses_the_openai_chunk_format_and_stamps_emission_times(llm_server):
    llm_server.script(reply="One two three.")
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}

    with httpx.stream("POST", f"{llm_server.base_url}/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert [c["choices"][0]["delta"]["content"] for c in content] == ["One", " two", " three."]
    stamps = [c["x_emitted_at"] for c in content]
    assert stamps == sorted(stamps) and abs(stamps[0] - time.time()) < 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_tokens_per_second_paces_the_stream(llm_server):
    llm_server.script(reply="a b c d e f g h i j k", tokens_per_second=20)
    client = openai.OpenAI(base_url=llm_server.base_url, api_key="x", max_retries=0)
    started = time.monotonic()

    pieces = [
        chunk.choices[0].delta.content
        for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        if chunk.choices and chunk.choices[0].delta.content
    ]

    assert "".join(pieces) == "a b c d e f g h i j k"
    assert time.monotonic() - started >= 10 / 20  # the 11th piece is due 0.5 s after the first


def test_default_reply_cites_the_labels_in_the_prompt_in_the_question_language(llm_server):
    client = openai.OpenAI(base_url=llm_server.base_url, api_key="x", max_retries=0)
    korean = [{"role": "user", "content": "[S1] 환불 규정\n\n환불은 언제까지 가능한가요?"}]

    english = client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    hangul = client.chat.completions.create(model="m", messages=korean).choices[0].message.content

    assert english.endswith("Sources: [S2] [S1]")
    assert "출처: [S1]" in hangul


def test_script_applies_to_the_next_times_requests_only(llm_server):
    llm_server.script(fail="500", times=1)
    body = {"model": "m", "messages": MESSAGES}

    first = httpx.post(f"{llm_server.base_url}/chat/completions", json=body)
    second = httpx.post(f"{llm_server.base_url}/chat/completions", json=body)

    assert first.status_code == 500 and first.json()["error"]["message"]
    assert second.status_code == 200


def test_split_pieces_keeps_the_exact_text():
    text = "  Hello,  world!\n환불은 30일 이내 [S1].\t"
    assert "".join(split_pieces(text)) == text
    assert split_pieces("one two") == ["one", " two"]


def test_embeddings_are_deterministic_normalised_and_base64_capable(llm_server):
    url = f"{llm_server.base_url}/embeddings"
    floats = httpx.post(url, json={"model": "e", "input": ["refund", "환불"], "dimensions": 32}).json()
    encoded = httpx.post(url, json={"model": "e", "input": "refund", "dimensions": 32, "encoding_format": "base64"})

    vector = floats["data"][0]["embedding"]
    assert len(vector) == 32 and abs(sum(v * v for v in vector) - 1) < 1e-9
    decoded = struct.unpack("<32f", base64.b64decode(encoded.json()["data"][0]["embedding"]))
    assert decoded == pytest.approx(vector, abs=1e-6)
    assert floats["data"][1]["embedding"] != vector


def test_models_are_listed_for_the_sdk(llm_server):
    client = openai.OpenAI(base_url=llm_server.base_url, api_key="x", max_retries=0)
    assert [model.id for model in client.models.list()] == ["protostar-test"]


def test_server_process_is_scripted_and_inspected_over_http():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.llmserver", "--port", "0", "--print-url"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        remote_script(base_url, reply="Scripted from afar.", times=1)
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)

        reply = client.chat.completions.create(model="far-model", messages=MESSAGES).choices[0].message.content

        assert reply == "Scripted from afar."
        [logged] = remote_requests(base_url)
        assert logged["model"] == "far-model" and logged["messages"] == MESSAGES
        assert logged["received_at"] <= time.time()
        remote_reset(base_url)
        assert remote_requests(base_url) == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_bad_script_is_refused(llm_server):
    response = httpx.post(f"{llm_server.url}/_script", json={"fail": "explode"})
    assert response.status_code == 400 and "fail must be" in response.json()["error"]["message"]
