"""The ``skillcall`` command line. The only place that prints, maps errors to exit codes and configures logging."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Optional

import typer

from skills import SkillcallError

app = typer.Typer(
    name="skillcall",
    help="Offline voice assistant: speech -> Whisper -> router -> skill.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("skillcall")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _config():
    from .config import load_config

    return load_config()


def _registry(config, notify=None):
    from skills import SkillContext, load_registry

    context = SkillContext(config.skills, notify or (lambda text: typer.echo(text)))
    registry = load_registry(context, config.skills_dir)
    for problem in registry.problems:
        typer.echo(f"warning: skill file {problem}", err=True)
    return registry


@app.command("skills")
def skills_command(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per skill.")] = False) -> None:
    """List the loaded skills with their signatures and descriptions."""
    try:
        registry = _registry(_config())
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    for found in registry:
        if as_json:
            typer.echo(json.dumps({"name": found.name, "signature": found.signature, "description": found.description,
                                   "parameters": found.json_schema(), "risky": found.risky, "source": found.source},
                                  ensure_ascii=False))  # fmt: skip
        else:
            typer.echo(f"{found.signature}\n    {found.description}")


@app.command("call")
def call_command(
    call: Annotated[str, typer.Argument(help='A skill call, e.g. \'math(question="nine times nine")\'.')],
) -> None:
    """Parse, validate and run one skill call; print its reply. Exit 1 on an invalid call or a failed skill."""
    try:
        registry = _registry(_config())
        parsed = registry.parse(call)
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    result = registry.dispatch(parsed)
    if not result.ok:
        raise _fail(result.text)
    if result.text:
        typer.echo(result.text)


@app.command("config")
def config_command() -> None:
    """Print the effective configuration (TOML file + SKILLCALL_* variables) and the file it came from."""
    from .config import config_path

    path = config_path()
    try:
        config = _config()
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"# {path}{'' if path.exists() else ' (not present: defaults)'}")
    typer.echo(json.dumps(config.model_dump(mode="json"), indent=2, ensure_ascii=False))


def main(argv: Optional[list[str]] = None) -> None:
    app(args=argv)


if __name__ == "__main__":
    main()
