"""The OpenAI-compatible endpoint with the official ``openai`` SDK, unchanged, against a live daphne, the real chat
worker and the scripted LLM: answers carry ``[S1]`` citations in the text and a ``sources`` list at the end."""

from __future__ import annotations

import openai
import pytest

from chat.models import Conversation, Message
from tests.live import api_key

pytestmark = pytest.mark.django_db(transaction=True)
REPLY = "연차는 연간 최대 18일입니다 [S3]. Employees accrue 1.5 days a month [S1]."


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("sdk-user", password="pw-123456")


def sdk(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)


def test_sdk_without_streaming_gets_the_answer_with_citations_and_sources(
    api_server, user, knowledge_base, chat_worker, llm
):
    llm.script(reply=REPLY, tokens_per_second=200)
    client = sdk(api_server, api_key(user, "read", "ask"))
    completion = client.chat.completions.create(
        model="protostar",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "연차는 며칠인가요?"},
        ],
    )
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert "[S1]" in completion.choices[0].message.content
    sources = completion.model_extra["sources"]
    assert {source["label"] for source in sources} >= {"S1", "S3"}
    assert any(source["title"] == "Employee Handbook" for source in sources)
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    answer = Message.objects.get(pk=int(completion.id.removeprefix("chatcmpl-")))
    assert answer.conversation.owner == user and answer.status == Message.Status.COMPLETE
    # The normal pipeline: our prompt with the retrieved passages, not the client's system message.
    prompt = " ".join(message["content"] for message in llm.requests[-1]["messages"])
    assert "You are terse." not in prompt and "18일" in prompt


def test_sdk_streaming_gets_the_pieces_and_sources_in_the_final_chunk(
    api_server, user, knowledge_base, chat_worker, llm
):
    llm.script(reply=REPLY, tokens_per_second=200)
    client = sdk(api_server, api_key(user, "ask"))
    stream = client.chat.completions.create(
        model="protostar",
        messages=[
            {"role": "user", "content": "What is the leave policy?"},
            {"role": "assistant", "content": "Which part?"},
            {"role": "user", "content": [{"type": "text", "text": "How many days a year?"}]},
        ],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == REPLY
    assert len(chunks) > 3
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert {source["label"] for source in final.model_extra["sources"]} >= {"S1"}
    assert final.usage.completion_tokens > 0
    # The request's earlier turns became the conversation the answer was written in.
    conversation = Conversation.objects.get(owner=user)
    roles = list(conversation.messages.order_by("id").values_list("role", "content"))
    assert roles[:3] == [
        ("user", "What is the leave policy?"),
        ("assistant", "Which part?"),
        ("user", "How many days a year?"),
    ]


def test_models_lists_protostar_and_an_unknown_model_is_not_found(api_server, user):
    client = sdk(api_server, api_key(user, "read", "ask"))
    assert [model.id for model in client.models.list()] == ["protostar"]
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["code"] == "model_not_found"
    assert not Message.objects.exists()


def test_keys_without_the_scope_revoked_or_expired_are_refused(api_server, user):
    from accounts.models import ApiKey
    from accounts.services import apikey_revoke

    question = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.PermissionDeniedError):
        sdk(api_server, api_key(user, "read")).chat.completions.create(model="protostar", messages=question)
    revoked = api_key(user, "ask")
    apikey_revoke(api_key=ApiKey.objects.get(prefix=revoked[:12]))
    with pytest.raises(openai.AuthenticationError):
        sdk(api_server, revoked).chat.completions.create(model="protostar", messages=question)
    with pytest.raises(openai.AuthenticationError):
        sdk(api_server, "psk_not-a-real-key").models.list()
    assert not Message.objects.exists()
