"""Configuration: one TOML file in the platform's config folder, overridden by ``SKILLCALL_*`` environment variables.

``SKILLCALL_CONFIG`` names another file; nested keys use ``__`` (``SKILLCALL_SKILLS__HOME_LOCATION=Oslo``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from finetune.examples import EXAMPLES_DIR
from skills import SkillcallError, SkillSettings, UserPath

from .daemon import DaemonOptions
from .routers import RouterOptions
from .transcribe import TranscriberOptions

logger = logging.getLogger(__name__)


class ConfigError(SkillcallError):
    """The configuration file or an override is invalid."""


def config_path() -> Path:
    """The config file in use: ``$SKILLCALL_CONFIG`` or ``<user config dir>/skillcall/config.toml``."""
    configured = os.environ.get("SKILLCALL_CONFIG")
    return Path(configured).expanduser() if configured else Path(platformdirs.user_config_dir("skillcall")) / "config.toml"


class Config(BaseSettings):
    """The effective configuration. Each stage reads its own group; the CLI builds this once."""

    model_config = SettingsConfigDict(env_prefix="SKILLCALL_", env_nested_delimiter="__", extra="forbid")

    skills_dir: UserPath = Field(
        default_factory=lambda: Path(platformdirs.user_config_dir("skillcall")) / "skills",
        description="Folder of your own skill files (*.py), loaded after the built-ins.",
    )
    examples_dir: UserPath = Field(
        default_factory=lambda: EXAMPLES_DIR,
        description="Folder of the example files (<skill>_examples.txt); skills_dir is read for more.",
    )
    skills: SkillSettings = Field(default_factory=SkillSettings)
    router: RouterOptions = Field(default_factory=RouterOptions)
    transcriber: TranscriberOptions = Field(default_factory=TranscriberOptions)
    daemon: DaemonOptions = Field(default_factory=DaemonOptions)

    def example_dirs(self) -> list[Path]:
        """Where example files are read from: the examples folder, then your skills folder."""
        return [self.examples_dir, self.skills_dir]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path())


def load_config(**overrides: object) -> Config:
    """Read the config file and environment; raises ``ConfigError`` naming the file and the bad key."""
    path = config_path()
    if path.is_dir():
        raise ConfigError(f"the config file {path} is a folder; point SKILLCALL_CONFIG at a .toml file")
    if os.environ.get("SKILLCALL_CONFIG") and not path.exists():  # named, so meant: not the defaults in silence
        logger.warning("SKILLCALL_CONFIG names %s, which does not exist: using the defaults", path)
    try:
        config = Config(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration ({path} or SKILLCALL_* variables): {problems}") from None
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError; so is a bad SKILLCALL_* JSON
        where = "the SKILLCALL_* variables" if isinstance(exc, SettingsError) else f"the config file {path}"
        raise ConfigError(f"cannot read {where}: {exc}; fix or remove it") from None
    for key in ("skills_dir", "examples_dir"):  # set by the user, so meant: not nothing loaded in silence
        folder = getattr(config, key)
        if key in config.model_fields_set and not folder.is_dir():
            logger.warning("%s is %s, which is not a folder: nothing is read from it (fix it in %s or the "
                           "SKILLCALL_* variables)", key, folder, path)  # fmt: skip
    return config
