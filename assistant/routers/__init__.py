"""Routers: utterance text -> validated ``SkillCall``s, behind one interface (``Router.route``).

- ``llama.cpp`` (default, ``llamacpp.py``): the bundled SmolLM2 GGUF plus the shipped LoRA adapter (merged once into
  a cached Q8_0 GGUF), constrained decoding from the live registry (spans of the utterance, forced tokens where only
  one continuation is possible), drafted tokens checked in one batch (``drafting.py``), the prompt prefix evaluated
  once and reused (``session.py``, the one file that touches llama-cpp-python's insides).
- ``transformers``: base + PEFT adapter in PyTorch, for a GPU user's fine-tuned 7B.
- ``openai``: function calling against any OpenAI-compatible endpoint (OpenAI, vLLM, llama-server).

``load_router(options, registry)`` builds the configured one (``options.py``); ``base.py`` holds the interface and
the trained router folder's card as routers read it. Heavy libraries load inside the router that needs them.
"""

from .base import OTHER, Router, RouteResult, read_card, retrain_command
from .llamacpp import LlamaCppRouter, default_threads
from .loading import ROUTERS, load_router
from .openai import OpenAIRouter
from .options import RouterOptions
from .transformers import TransformersRouter

__all__ = ["OTHER", "ROUTERS", "LlamaCppRouter", "OpenAIRouter", "RouteResult", "Router", "RouterOptions",
           "TransformersRouter", "default_threads", "load_router", "read_card", "retrain_command"]  # fmt: skip
