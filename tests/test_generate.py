"""skillcall generate: the real openai client against a stub on 127.0.0.1 with good and bad tool calls."""

from __future__ import annotations

import json
import time

import pytest

from finetune.documents import ChunkOptions
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


# -- from documents --------------------------------------------------------------------------------------------
ASK = """\
#### Prompt:
ask(question="[question]") an open question for a chat model.

#### Prompt Examples:

### User: Why is the sky blue?
### Assistant: ask(question="Why is the sky blue")

#### Examples:
"""


def _questions(*questions, name="add_questions"):
    return _tool_response(json.dumps({"questions": list(questions)}), name=name)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "garden").mkdir(parents=True)
    (folder / "garden" / "bees.md").write_text("Bees make honey from nectar. " * 3)  # 87 characters: 2 chunks of 50
    (folder / "tea.txt").write_text("Green tea steeps at 80 degrees.")  # 1 chunk
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (folder / "empty.txt").write_text("")
    return folder


def test_questions_about_each_chunk_become_rows_and_bad_input_is_reported(stub, tmp_path, docs, registry):
    (tmp_path / "ask_examples.txt").write_text(ASK)
    answers = [
        _questions("How do bees make honey?", "What do bees make honey from?", "Why is the sky blue?", 7),
        _tool_response("{not json", name="add_questions"),  # a malformed tool call: reported, and the run goes on
        _questions("At what temperature does green tea steep?", name="add_examples"),
    ]
    stub.routes["/v1/chat/completions"] = lambda request: answers.pop(0)
    done = []
    options = GenerateOptions("ask", n=3, base_url=f"{stub.url}/v1", model="stub", from_docs=docs,
                              chunking=ChunkOptions(50, 50))  # fmt: skip
    result = generate(options, registry, tmp_path, progress=done.append)
    assert [(e.text, e.call) for e in result.added] == [
        ("How do bees make honey?", 'ask(question="How do bees make honey")'),
        ("What do bees make honey from?", 'ask(question="What do bees make honey from")')]  # fmt: skip
    assert result.chunks == result.requests == 3 and done == [1, 1, 1]
    assert {(s.path.name, s.reason) for s in result.skipped} == {("logo.png", "not text (binary)"),
                                                                 ("empty.txt", "empty")}  # fmt: skip
    reasons = [reason for _, reason in result.rejected]
    assert "duplicate of an existing example" in reasons and "not a string" in reasons
    assert any(r.startswith("malformed tool arguments") for r in reasons)
    assert "called 'add_examples', not add_questions" in reasons
    first = stub.requests[0].body
    assert first["tool_choice"]["function"]["name"] == "add_questions"
    assert "Bees make honey from nectar." in first["messages"][1]["content"]
    assert "Write 3 questions" in first["messages"][1]["content"]
    assert "Green tea steeps" in stub.requests[2].body["messages"][1]["content"]
    example_file, problems = read_example_file(tmp_path / "ask_examples.txt")
    assert not problems and [e.text for e in example_file.examples] == [e.text for e in result.added]


def test_a_file_that_stops_being_text_is_read_up_to_there(stub, tmp_path, registry):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "mixed.txt").write_bytes(b"Tides follow the moon. " * 400 + b"\xff\xfe broken")  # 9.2 KB, then not UTF-8
    stub.routes["/v1/chat/completions"] = lambda request: _questions()
    options = GenerateOptions("ask", n=2, base_url=f"{stub.url}/v1", from_docs=folder,
                              chunking=ChunkOptions(4096, 4096))  # fmt: skip
    result = generate(options, registry, tmp_path)
    assert result.chunks == 2  # the two whole chunks before the bad bytes
    assert [s.reason for s in result.skipped] == ["not UTF-8 text from here on: the rest skipped after 2 chunk(s) "
                                                  "of it"]  # fmt: skip


def test_an_empty_folder_and_a_skill_a_question_cannot_fill(stub, tmp_path, registry):
    (tmp_path / "empty").mkdir()
    options = GenerateOptions("ask", base_url=f"{stub.url}/v1", from_docs=tmp_path / "empty")
    result = generate(options, registry, tmp_path)
    assert result.added == [] and result.chunks == 0 and stub.requests == []
    for skill in ("weather", "notes"):  # no required text argument; two required arguments
        with pytest.raises(GenerateError, match=rf"one required text argument of a skill like ask\(question: str\); "
                                                rf"{skill}\(.*\) is not such a skill"):  # fmt: skip
            generate(GenerateOptions(skill, base_url=f"{stub.url}/v1", from_docs=tmp_path), registry, tmp_path)
