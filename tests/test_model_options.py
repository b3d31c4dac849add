"""assistant.model_options: a command's options made from an options model, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from assistant.model_options import model_options

runner = CliRunner()


class Group(BaseModel):
    r: int = Field(4, description="Rank.")
    alpha: float = Field(8.0, description="Set by the command.")
    names: list[str] = Field(default_factory=list, description="A list: left to a config file.")


class Options(BaseModel):
    path: Path = Field(Path("data"), description="Where.")
    rate: float = Field(0.5, description="How fast.")
    limit: int | None = Field(None, description="At most this many.")
    mode: Literal["plain", "fancy"] = Field("plain", description="Which way.")
    fast: bool = Field(True, description="Go fast.")
    hidden: str = Field("x", description="Set by the command.")
    group: Group = Field(default_factory=Group)


app = typer.Typer()


@app.command()
@model_options(Options, groups=("group",), skip=("hidden", "group.alpha"), names={"rate": ("--rate", "-r")})
def go(config: Annotated[Path | None, typer.Option("--config", help="A file.")] = None, *, given: dict) -> None:
    """Echo what was given."""
    typer.echo(json.dumps({"config": config and str(config), "given": given}, default=str))


def _given(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_only_the_options_given_reach_the_command_shaped_like_the_model():
    assert _given() == {"config": None, "given": {}}
    said = _given("-r", "0.1", "--no-fast", "--group-r", "8", "--mode", "fancy", "--path", "x", "--config", "c.toml")
    assert said == {"config": "c.toml",
                    "given": {"rate": 0.1, "fast": False, "group": {"r": 8}, "mode": "fancy", "path": "x"}}  # fmt: skip
    assert _given("--fast", "--limit", "3")["given"] == {"fast": True, "limit": 3}


def test_help_lists_each_field_with_its_description_and_default():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for shown in ("--config", "How fast. (default: 0.5)", "--limit", "At most this many.", "--no-fast",
                  "Go fast. (default: True)", "--group-r", "Rank. (default: 4)", "Echo what was given."):  # fmt: skip
        assert shown in result.stdout, shown
    assert "(default: None)" not in result.stdout
    for left_out in ("--hidden", "--group-alpha", "--group-names"):
        assert left_out not in result.stdout


def test_a_value_the_field_cannot_take_is_refused_at_the_command_line():
    for args, bad in ((["--mode", "loud"], "loud"), (["--group-r", "many"], "--group-r")):
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 2 and bad in result.output
