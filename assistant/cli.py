"""The ``skillcall`` command line. The only place that prints, maps errors to exit codes and configures logging."""

from __future__ import annotations

import json
import logging
from pathlib import Path
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


examples_app = typer.Typer(help="Work with the example files the router is trained on.", no_args_is_help=True)
app.add_typer(examples_app, name="examples")


@examples_app.command("check")
def examples_check() -> None:
    """Validate every example file: format, calls, spans, duplicates. Per-skill counts; exit 1 on any problem."""
    from finetune.examples import load_examples

    try:
        config = _config()
        example_set = load_examples(config.example_dirs(), _registry(config))
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    counts = example_set.counts()
    width = max(map(len, counts), default=5)
    for skill, count in counts.items():
        typer.echo(f"{skill:<{width}}  {count:>5}")
    typer.echo(f"{'total':<{width}}  {sum(counts.values()):>5}")
    for problem in example_set.problems:
        typer.echo(str(problem), err=True)
    if example_set.problems:
        raise _fail(f"{len(example_set.problems)} problem(s) in the example files")


@app.command("dataset")
def dataset_command(
    out: Annotated[Path, typer.Option(help="Folder for train/validation/test.jsonl.")] = Path("data"),
    seed: Annotated[int, typer.Option(help="Shuffle seed; the same seed gives byte-identical files.")] = 0,
) -> None:
    """Example files -> train/validation/test JSONL (80/10/10 per skill), deterministic for a seed."""
    from finetune.dataset import DatasetOptions, build_dataset
    from finetune.examples import load_examples

    try:
        config = _config()
        result = build_dataset(load_examples(config.example_dirs(), _registry(config)), DatasetOptions(out, seed))
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    width = max(map(len, result.counts), default=5)
    typer.echo(f"{'skill':<{width}}  {'train':>6} {'valid':>6} {'test':>6}")
    for skill, split in result.counts.items():
        typer.echo(f"{skill:<{width}}  {split['train']:>6} {split['validation']:>6} {split['test']:>6}")
    totals = [sum(c[name] for c in result.counts.values()) for name in ("train", "validation", "test")]
    typer.echo(f"{'total':<{width}}  {totals[0]:>6} {totals[1]:>6} {totals[2]:>6}")
    if result.removed:
        typer.echo(f"removed {result.removed} near-duplicate row(s)")
    typer.echo(f"wrote {', '.join(str(p) for p in result.paths.values())}")


@app.command("generate")
def generate_command(
    skill: Annotated[str, typer.Option("--skill", help="Skill to write examples for.")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many new valid rows to append.")] = 20,
    model: Annotated[str, typer.Option(help="Chat model name.")] = "gpt-4o-mini",
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible base URL (default: OpenAI).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=50, help="Rows asked for per request.")] = 10,
) -> None:
    """Ask a chat model (function calling) for new examples of a skill; append the valid, new ones."""
    from tqdm import tqdm

    from finetune.generate import GenerateOptions, generate

    options = GenerateOptions(skill=skill, n=n, model=model, base_url=base_url, batch_size=batch_size)
    try:
        config = _config()
        registry = _registry(config)
        folder = _examples_folder(config, registry, skill)
        with tqdm(total=n, unit="row", desc=f"generate {skill}") as bar:
            result = generate(options, registry, folder, progress=bar.update)
    except SkillcallError as exc:
        raise _fail(str(exc)) from None
    for row, reason in result.rejected:
        typer.echo(f"rejected: {reason}: {row}", err=True)
    typer.echo(f"appended {len(result.added)} row(s) to {result.path} ({len(result.rejected)} rejected, "
               f"{result.requests} request(s))")  # fmt: skip
    if len(result.added) < n:
        raise _fail(f"only {len(result.added)} of {n} rows were valid and new; run again for more")


def _examples_folder(config, registry, skill: str) -> Path:
    """Where a skill's example file lives: where it already is, else beside the skill (built-in or yours)."""
    from finetune.examples import SUFFIX
    from skills import BUILTIN_DIR

    for folder in config.example_dirs():
        if (folder / f"{skill}{SUFFIX}").exists():
            return folder
    source = Path(registry.get(skill).source)
    return config.examples_dir if source.parent == BUILTIN_DIR else config.skills_dir


def main(argv: Optional[list[str]] = None) -> None:
    app(args=argv)


if __name__ == "__main__":
    main()
