"""skillcall's assistant layer: audio, VAD, transcribers, routers, the daemon, config and the CLI.

Front doors: ``load_config``, ``load_router``, ``load_transcriber``, ``segment``, ``Daemon``, ``Corrector``,
``new_skill``. They are imported
on first use, so ``skillcall --help`` stays instant.
"""

from importlib import import_module
from typing import Any

_FRONT_DOORS = {
    "Config": "config", "ConfigError": "config", "config_path": "config", "load_config": "config",
    "Router": "routers", "RouterOptions": "routers", "RouteResult": "routers", "load_router": "routers",
    "Transcriber": "transcribe", "TranscriberOptions": "transcribe", "Transcript": "transcribe",
    "load_transcriber": "transcribe", "Segmenter": "vad", "Utterance": "vad", "VadOptions": "vad",
    "segment": "vad", "Daemon": "daemon", "DaemonOptions": "daemon", "History": "history", "Turn": "history",
    "convert_whisper": "whisper_convert", "ConvertError": "whisper_convert", "AudioError": "audio",
    "HistoryError": "history", "Corrector": "corrections", "CorrectionError": "corrections",
    "spoken_correction": "corrections", "new_skill": "scaffold", "NewSkillOptions": "scaffold",
    "ScaffoldError": "scaffold",
}  # fmt: skip
__all__ = sorted(_FRONT_DOORS)


def __getattr__(name: str) -> Any:
    if name in _FRONT_DOORS:
        return getattr(import_module(f".{_FRONT_DOORS[name]}", __name__), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
