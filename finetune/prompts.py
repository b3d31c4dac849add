"""Prompt templates (``prompts/<family>.toml``): one renderer for training rows and serving prompts alike.

A template is three pieces around the utterance: ``before`` (with ``{system_block}``), the utterance, ``after``;
then the completion (``{call}`` plus the family's end marker). The system block (``system_block`` around the
``system`` line and a skill list) is there only when the prompt lists skills: a fine-tuned router knows its
skills, and every prompt token costs training time. Routers tokenize ``before``/``after`` with special
tokens and the utterance without, so words a person says can never become control tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tomllib

from skills import Registry, SkillcallError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
MAX_UTTERANCE_CHARS = 400
"""Longer utterances are cut: the router's prompt (and so its latency) stays bounded."""

SkillList = Literal["none", "names", "full"]
DEFAULT_TEMPLATE = "compact"
"""What ``skillcall train`` uses unless told otherwise: compact ChatML, the fewest tokens around the utterance."""


class PromptError(SkillcallError):
    """A prompt template that is missing or malformed."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    system_block: str
    before: str
    after: str
    completion: str
    stop: tuple[str, ...]
    append_eos: bool = False
    description: str = ""

    def prefix(self, skills_text: str = "") -> str:
        """Everything before the utterance: the same for every utterance, so a router evaluates it once."""
        block = self.system_block.format(system=f"{self.system}\n{skills_text}") if skills_text else ""
        return self.before.format(system_block=block)

    def parts(self, utterance: str, skills_text: str = "") -> tuple[str, str, str]:
        """(prefix, cleaned utterance, suffix)."""
        return self.prefix(skills_text), clean_utterance(utterance), self.after

    def render(self, utterance: str, skills_text: str = "") -> str:
        return "".join(self.parts(utterance, skills_text))

    def render_completion(self, call: str) -> str:
        return self.completion.format(call=call)


_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (NUL, an escape sequence's ESC, C1) and lone surrogates (``"\\ud800"`` is valid JSON, but no
text: UTF-8 cannot encode it, so no tokenizer can)."""


def clean_utterance(text: str) -> str:
    """One line, single spaces, at most ``MAX_UTTERANCE_CHARS`` characters, and only text: control characters and
    lone surrogates are spaces (every router reads the utterance through here, so none sees or fails on them)."""
    return " ".join(_NOT_TEXT.sub(" ", str(text)).split())[:MAX_UTTERANCE_CHARS]


def load_template(name: str | Path = DEFAULT_TEMPLATE) -> PromptTemplate:
    """A template by family name (``compact``, ``chatml``, ``mistral``, ``llama2``, ``alpaca``) or a ``.toml`` path."""
    path = Path(name) if str(name).endswith(".toml") else PROMPTS_DIR / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        template = PromptTemplate(
            name=path.stem,
            system=data["system"],
            system_block=data["system_block"],
            before=data["before"],
            after=data["after"],
            completion=data["completion"],
            stop=tuple(data.get("stop", ())),
            append_eos=bool(data.get("append_eos", False)),
            description=data.get("description", ""),
        )
        template.prefix("x")
        template.render_completion("x()")
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.toml")))
        raise PromptError(f"no prompt template {str(name)!r}; use one of {known} or a path to a .toml file") from None
    except (KeyError, ValueError, IndexError, tomllib.TOMLDecodeError) as exc:
        raise PromptError(f"prompt template {path} is malformed ({type(exc).__name__}: {exc})") from None
    return template


def skills_text(registry: Registry, mode: SkillList = "none", descriptions: dict[str, str] | None = None) -> str:
    """The skill list a prompt shows: nothing (a fine-tuned router knows its skills), compact names, or one
    line per skill (its example file's ``#### Prompt:`` line, else signature and description)."""
    if mode == "none":
        return ""
    if mode == "names":
        return "Skills: " + ", ".join(
            f"{s.name}({', '.join(p.name + ('' if p.required else '?') for p in s.parameters)})" for s in registry
        )
    descriptions = descriptions or {}
    return "\n".join(descriptions.get(s.name) or f"{s.signature} {s.description}" for s in registry)
