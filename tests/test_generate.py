"""skillcall generate: the real openai client against a stub on 127.0.0.1 with good and bad tool calls."""

from __future__ import annotations

import json
import time

import pytest

from finetune.examples import read_example_file
from finetune.generate import TOOL_NAME, GenerateError, GenerateOptions, generate
from tests.servers import json_response

SEED = """\
#### Prompt:
weather(location="[location]") get the current weather at a location.

#### Prompt Examples:

### User: What's the weather in Berlin?
### Assistant: weather(location="Berlin")

#### Examples:

### User: is it going to rain in paris
### Assistant: weather(location="paris")
"""


def _tool_response(*argument_strings, name=TOOL_NAME):
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": args}}
             for i, args in enumerate(argument_strings)]  # fmt: skip
    return json_response({
        "id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": calls}}],
    })  # fmt: skip


def _rows(*pairs):
    return json.dumps({"examples": [{"user": u, "assistant": a} for u, a in pairs]})


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "weather_examples.txt").write_text(SEED)
    return tmp_path


def _serve(stub, responses):
    queue = list(responses)
    stub.routes["/v1/chat/completions"] = lambda request: queue.pop(0) if queue else _tool_response(_rows())


def test_only_valid_new_rows_are_appended(stub, folder, registry):
    _serve(stub, [
        (429, "application/json", b'{"error": {"message": "slow down"}}'),
        (503, "application/json", b'{"error": {"message": "busy"}}'),
        _tool_response(
            "{not json",
            _rows(
                ("Will it snow in Oslo tomorrow?", 'weather(location="Oslo")'),
                ("how warm is it in lima", "weather(location='lima')"),
                ("Weather in Rome?", 'weather(location="Milan")'),
                ("What time is it in Rome?", 'timecheck(location="Rome")'),
                ("weather in nice", "weather(location=3)"),
                ("weather in cannes", "weather(location=__import__('os'))"),
                ("IS IT GOING TO RAIN IN PARIS?", 'weather(location="PARIS")'),
                ("Will it snow in Oslo tomorrow", 'weather(location="Oslo")'),
                ("", "weather()"),
            ),
            json.dumps({"examples": "not a list"}),
        ),
        _tool_response(_rows(("Otto, is it windy in Wellington?", 'weather(location="Wellington")'),
                             ("Weather at home?", "weather()"))),
    ])  # fmt: skip
    options = GenerateOptions("weather", n=3, base_url=f"{stub.url}/v1", model="stub", batch_size=5, max_retries=2)
    result = generate(options, registry, folder)
    assert [e.call for e in result.added] == ['weather(location="Oslo")', 'weather(location="lima")',
                                              'weather(location="Wellington")']  # fmt: skip
    assert result.requests == 2
    reasons = " | ".join(reason for _, reason in result.rejected)
    for expected in ("malformed tool arguments", "not a span", "this file is for weather", "location must be text",
                     "must be a literal", "duplicate of an existing example", "empty", "examples is not a list"):
        assert expected in reasons
    example_file, problems = read_example_file(folder / "weather_examples.txt")
    assert not problems
    assert [e.text for e in example_file.examples][-3:] == [
        "Will it snow in Oslo tomorrow?", "how warm is it in lima", "Otto, is it windy in Wellington?"]
    request = stub.requests[-1].body
    assert request["tool_choice"]["function"]["name"] == TOOL_NAME
    assert request["tools"][0]["function"]["parameters"]["properties"]["examples"]["type"] == "array"
    assert "is it going to rain in paris" in request["messages"][1]["content"]


def test_edits_made_while_it_runs_are_kept(stub, folder, registry):
    path = folder / "weather_examples.txt"
    answers = [_rows(("Is it foggy in Lisbon?", 'weather(location="Lisbon")')),
               _rows(("Any sun in Xyloville today?", 'weather(location="Xyloville")'))]  # fmt: skip

    def answer(request):
        if len(answers) == 1:  # the user adds a row by hand while the second request runs
            with path.open("a") as handle:
                handle.write('\n### User: weather in Xyloville\n### Assistant: weather(location="Xyloville")\n')
        return _tool_response(answers.pop(0))

    stub.routes["/v1/chat/completions"] = answer
    options = GenerateOptions("weather", n=2, base_url=f"{stub.url}/v1", model="stub", batch_size=1)
    assert len(generate(options, registry, folder).added) == 2
    texts = [e.text for e in read_example_file(path)[0].examples]
    assert texts[-3:] == ["Is it foggy in Lisbon?", "weather in Xyloville", "Any sun in Xyloville today?"]


def test_a_model_that_never_calls_the_tool_stops_after_the_request_limit(stub, folder, registry):
    text_only = json_response({"id": "x", "object": "chat.completion", "created": 1, "model": "stub", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Sure! Here you go"}}]})
    stub.routes["/v1/chat/completions"] = lambda request: text_only
    result = generate(GenerateOptions("weather", n=2, base_url=f"{stub.url}/v1", max_requests=3), registry, folder)
    assert result.added == [] and result.requests == 3
    assert result.rejected[0][1] == "the model answered without calling the tool"
    assert (folder / "weather_examples.txt").read_text() == SEED


def test_no_key_and_no_endpoint(folder, registry):
    with pytest.raises(GenerateError, match=r"no API key: set \$OPENAI_API_KEY, or pass --base-url"):
        generate(GenerateOptions("weather"), registry, folder)


def test_unreachable_endpoint_and_persistent_errors(stub, folder, registry):
    with pytest.raises(GenerateError, match="cannot reach http://127.0.0.1:9/v1"):
        generate(GenerateOptions("weather", base_url="http://127.0.0.1:9/v1", max_retries=0), registry, folder)
    stub.routes["/v1/chat/completions"] = lambda request: (500, "application/json", b'{"error": {"message": "x"}}')
    with pytest.raises(GenerateError, match="answered 500 after 1 retries"):
        generate(GenerateOptions("weather", base_url=f"{stub.url}/v1", max_retries=1), registry, folder)
    stub.routes["/v1/chat/completions"] = lambda request: (400, "application/json", b'{"error": {"message": "no"}}')
    with pytest.raises(GenerateError, match=r"answered 400: .*no$"):  # not retried, so not "after 1 retries"
        generate(GenerateOptions("weather", base_url=f"{stub.url}/v1", max_retries=1), registry, folder)
    stub.routes["/v1/chat/completions"] = lambda request: time.sleep(1) or _tool_response(_rows())
    with pytest.raises(GenerateError, match=r"gave no answer within 0.2 s \(1 tries\)"):
        generate(GenerateOptions("weather", base_url=f"{stub.url}/v1", max_retries=0, timeout_s=0.2), registry,
                 folder)  # fmt: skip
    assert (folder / "weather_examples.txt").read_text() == SEED


def test_a_file_with_problems_is_not_touched(stub, folder, registry):
    (folder / "weather_examples.txt").write_text(SEED + "User: oops\n")
    with pytest.raises(GenerateError, match="looks like an example"):
        generate(GenerateOptions("weather", base_url=f"{stub.url}/v1"), registry, folder)
