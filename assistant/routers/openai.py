"""The openai router: function calling against any OpenAI-compatible endpoint (OpenAI, vLLM, llama-server)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from finetune.base import ModelError
from finetune.prompts import clean_utterance
from skills import MAX_CALLS, SEPARATOR, CallError

from .base import OTHER, Router, RouteResult


@dataclass
class OpenAIRouter(Router):
    """Function calling: one tool per skill from the registry's JSON schemas; the model must call one."""

    name: str = "openai"

    def __post_init__(self) -> None:
        import openai

        self._openai = openai
        key = os.environ.get(self.options.api_key_env)
        if not key and not self.options.base_url:
            raise ModelError(f"the openai router needs ${self.options.api_key_env} or router.base_url")
        self.client = openai.OpenAI(base_url=self.options.base_url, api_key=key or "not-needed",
                                    timeout=self.options.timeout_s, max_retries=2)  # fmt: skip
        self.tools = [s.tool() for s in self.registry]
        self.system = ("You route a voice assistant's transcribed words to a tool: one tool call per request, up to "
                       f"{MAX_CALLS} requests in the order said. Copy text arguments from the words as said. Call "
                       "other when the words are not a request for any tool.")  # fmt: skip

    def _route(self, text: str, started: float) -> RouteResult:
        try:
            response = self.client.chat.completions.create(
                model=self.options.model, tools=self.tools, tool_choice="required", temperature=0,
                messages=[{"role": "system", "content": self.system}, {"role": "user", "content": clean_utterance(text)}],
            )  # fmt: skip
        except self._openai.OpenAIError as exc:
            return self._finish(text, "", started, reason=f"endpoint failed: {type(exc).__name__}: {exc}")
        message = response.choices[0].message if response.choices else None
        calls = (message.tool_calls or []) if message else []
        if not calls:
            return self._finish(text, (message.content or "") if message else "", started, reason="no tool call")
        written = []
        for tool_call in calls[: MAX_CALLS + 1]:  # several requests in one breath: a tool call each, in order
            function = tool_call.function
            try:
                arguments = json.loads(function.arguments or "{}")
                if not isinstance(arguments, dict):
                    raise ValueError("arguments are not an object")
                written.append(str(self.registry.validate(function.name, arguments)))
            except (ValueError, CallError) as exc:
                return self._finish(text, f"{function.name}({function.arguments})", started, reason=str(exc))
        requests = [call for call in written if call != str(OTHER)] or written[:1]  # other() is no request
        return self._finish(text, SEPARATOR.join(requests), started)
