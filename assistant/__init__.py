"""skillcall's assistant layer: audio, transcribers, routers, the daemon, config and the CLI."""

from .config import Config, ConfigError, config_path, load_config

__all__ = ["Config", "ConfigError", "config_path", "load_config"]
