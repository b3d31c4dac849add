"""ask: the real openai client against an OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

from tests.servers import json_response


def _completion(text):
    return json_response({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })  # fmt: skip


def test_answer_from_the_endpoint(registry, stub, settings):
    stub.routes["/v1/chat/completions"] = lambda request: _completion(" Because of Rayleigh scattering. ")
    settings.ask.base_url = f"{stub.url}/v1"
    settings.ask.model = "tiny"
    result = registry.dispatch(registry.parse('ask(question="why is the sky blue")'))
    assert result.ok and result.text == "Because of Rayleigh scattering."
    body = stub.requests[-1].body
    assert body["model"] == "tiny"
    assert body["messages"][-1] == {"role": "user", "content": "why is the sky blue"}


def test_not_configured(registry):
    result = registry.dispatch(registry.parse('ask(question="why")'))
    assert not result.ok and "skills.ask.base_url" in result.text and "$OPENAI_API_KEY" in result.text


def test_endpoint_down_or_failing(registry, stub, settings):
    settings.ask.base_url = "http://127.0.0.1:9/v1"
    result = registry.dispatch(registry.parse('ask(question="why")'))
    assert not result.ok and "can't reach the chat model" in result.text
    stub.routes["/v1/chat/completions"] = lambda request: json_response({"error": {"message": "bad model"}}, 400)
    settings.ask.base_url = f"{stub.url}/v1"
    result = registry.dispatch(registry.parse('ask(question="why")'))
    assert not result.ok and "answered 400" in result.text
    stub.routes["/v1/chat/completions"] = lambda request: _completion("")
    result = registry.dispatch(registry.parse('ask(question="why")'))
    assert not result.ok and "empty answer" in result.text


def test_a_hung_endpoint_is_named_within_the_skills_limit(registry, stub, settings):
    import time

    stub.routes["/v1/chat/completions"] = lambda request: time.sleep(2) or _completion("late")
    settings.ask.base_url = f"{stub.url}/v1"
    settings.http_timeout_s = 0.1  # each try waits 0.6 s, as the default 5 s waits 27 (two tries within 60)
    result = registry.dispatch(registry.parse('ask(question="why")'))
    assert not result.ok and "took too long to answer" in result.text
