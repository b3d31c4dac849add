"""Built-in skill: an open question for a chat model at an OpenAI-compatible endpoint from the config."""

from __future__ import annotations

import os

from skills import SkillContext, SkillFailed, skill

LIMIT_S = 60.0
"""How long an answer may take: both tries (one retry) end before it, so a hung endpoint is named as such."""


@skill(timeout_s=LIMIT_S)
def ask(question: str, context: SkillContext) -> str:
    """Answer an open question with a chat model: facts, explanations, advice, jokes."""
    settings = context.settings.ask
    key = os.environ.get(settings.api_key_env)
    if not settings.base_url and not key:
        raise SkillFailed(
            "No chat model is configured for open questions: set skills.ask.base_url and skills.ask.model "
            f"in the config, or put an API key in ${settings.api_key_env}."
        )
    import openai

    client = openai.OpenAI(
        base_url=settings.base_url, api_key=key or "not-needed", max_retries=1,
        timeout=min(context.settings.http_timeout_s * 6, LIMIT_S / 2 - 3),  # two tries and a back-off within LIMIT_S
    )  # fmt: skip
    try:
        reply = client.chat.completions.create(
            model=settings.model,
            max_tokens=settings.max_tokens,
            messages=[
                {"role": "system", "content": settings.system_prompt},
                {"role": "user", "content": question},
            ],
        )
    except openai.APITimeoutError as exc:
        raise SkillFailed(f"The chat model at {settings.base_url or 'OpenAI'} took too long to answer; try again, or "
                          "ask something shorter.") from exc
    except openai.APIConnectionError as exc:
        raise SkillFailed(f"I can't reach the chat model at {settings.base_url or 'OpenAI'}; is it running?") from exc
    except openai.APIStatusError as exc:
        raise SkillFailed(f"The chat model answered {exc.status_code}: {exc.message}") from exc
    text = (reply.choices[0].message.content or "").strip() if reply.choices else ""
    if not text:
        raise SkillFailed("The chat model sent an empty answer; try asking again.")
    return text
