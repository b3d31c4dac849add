"""``RouterOptions``: which router, with which model files: the ``[router]`` section of the config.

One flat model for the three kinds, each field saying which kind reads it: the config keys (``[router] threads =
2``) and variables (``SKILLCALL_ROUTER__THREADS``) are flat, and so is every caller's ``model_copy(update=...)``;
groups per kind would need a translation of both kept in step with the fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from finetune.base import DEFAULT_BASE
from finetune.card import ROUTER_DIR
from finetune.prompts import SkillList
from skills import UserPath


class RouterOptions(BaseModel):
    """Which router, with which model files. One ``[router]`` section of the config."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["llama.cpp", "transformers", "openai"] = Field("llama.cpp", description="Which router.")
    base: str = Field(DEFAULT_BASE, description="Base model: the bundled GGUF, a .gguf path, or an HF model.")
    router_dir: UserPath | None = Field(
        ROUTER_DIR, description="Trained router folder (router.json, router.gguf, adapter/); None = untuned base."
    )
    template: str | None = Field(None, description="Prompt template; None = the one the router was trained with.")
    skill_list: SkillList | None = Field(None, description="Skill list in the prompt; None = as trained.")
    constrain: bool = Field(True, description="Constrained decoding (llama.cpp, transformers): only valid calls "
                            "can come out.")
    merge: bool = Field(True, description="llama.cpp, bases under 1 GB: serve base and adapter merged into one Q8_0 "
                        "GGUF, built once into the user cache (the bundled base: about 10 s, 145 MB); a third faster "
                        "than applying the adapter live.")
    spans: bool = Field(True, description="Text arguments must be spans of the utterance (llama.cpp, transformers).")
    known_values: bool = Field(True, description="Where a skill says which values it can act on here "
                               "(``@skill(values=...)``; runapp: the installed apps), only those spans (llama.cpp, "
                               "transformers): \"turn on the coffee maker\" cannot open an app. ``skillcall eval`` "
                               "turns it off unless asked (its rows name apps this machine may lack).")  # fmt: skip
    max_tokens: int = Field(48, ge=4, description="Token bound on one call.")
    consult_margin: float = Field(4.0, ge=0, description="llama.cpp, a router trained with --members: the other "
                                  "members are asked about the skill when the router's likeliest first token leads "
                                  "the next by less than this many nats (about one utterance in nine with the "
                                  "shipped router); the skill is then the one their mean probability favours. 0 = "
                                  "never; a large value = always (each member costs an evaluation of the utterance).")
    draft_tokens: int = Field(12, ge=0, le=64, description="llama.cpp: tokens guessed ahead (the rest of a span) "
                              "and verified in one batch; 0 = one evaluation per generated token.")
    join_margin: float = Field(2.0, ge=0, description="llama.cpp: where another call may follow a whole one, how "
                               "much likelier (in logits) ending the calls there must be than going on with another, "
                               "for the router to end them (2: 0.80 -> 0.85 exact on the test split's compound rows, "
                               "nothing lost on single rows or SLURP); 0 = whichever the model favours.")
    threads: int | None = Field(None, ge=1, description="llama.cpp: CPU threads; None = one fewer than the cores "
                                "this process may use, at most 4, at least 1 (``default_threads``).")
    n_ctx: int = Field(1024, ge=128, description="llama.cpp context size.")
    base_url: str | None = Field(None, description="openai router: the endpoint's base URL.")
    model: str = Field("gpt-4o-mini", description="openai router: the model name.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai router: variable holding the key.")
    timeout_s: float = Field(30.0, gt=0, description="openai router: request timeout.")
