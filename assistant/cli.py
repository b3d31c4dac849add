"""The ``skillcall`` command line. The only place that prints, maps errors to exit codes and configures logging."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from typer.core import TyperGroup

from finetune.train.options import TrainOptions  # its fields are train's options (light: no torch)
from skills import SkillcallError

from .model_options import model_options


class _Commands(TyperGroup):
    """The one place errors become exit codes: a command's ``SkillcallError`` is one line on stderr, status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SkillcallError as exc:
            raise _fail(str(exc)) from None


app = typer.Typer(
    cls=_Commands,
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


def _json_line(row: dict) -> str:
    """One JSON line as it can be printed: text that UTF-8 cannot encode (a lone surrogate, read from the valid
    JSON "\\ud800") is written back as that escape, not a traceback."""
    return json.dumps(row, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def _config():
    from .config import load_config

    return load_config()


def _registry(config, notify=None, hold=None):
    from skills import SkillContext, load_registry

    context = SkillContext(config.skills, notify or (lambda text: typer.echo(text)), hold or (lambda work: None))
    registry = load_registry(context, config.skills_dir)
    for problem in registry.problems:
        typer.echo(f"warning: skill file {problem}", err=True)
    return registry


@app.command("skills")
def skills_command(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per skill.")] = False) -> None:
    """List the loaded skills with their signatures and descriptions."""
    registry = _registry(_config())
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
    """Parse, validate and run a skill call (or up to three joined by "; "); print the replies. Exit 1 on an invalid
    call or a failed skill."""
    held: list = []
    registry = _registry(_config(), hold=held.append)
    parsed = registry.parse_calls(call)
    _run_calls(registry, parsed, held)


def _run_calls(registry, calls, held: list) -> None:
    """Run the calls in the order said, printing each reply; a timer set keeps the process until it fires. Exit 1
    once they have all run when one failed (a failed call does not stop the next). ``held``: the work skills left
    running (``SkillContext.hold``)."""
    failures = []
    for call in calls:
        result = registry.dispatch(call)
        if not result.ok:
            failures.append(result.text)
        elif result.text:
            typer.echo(result.text)
    if failures:
        raise _fail("; ".join(failures))
    _wait_for_timers(held)


def _wait_for_timers(held: list) -> None:
    """A one-shot command that set a timer stays until it fires, or until Ctrl-C cancels it: the process is the
    timer's home."""
    timers = [work for work in held if work.is_alive()]
    if not timers:
        return
    typer.echo(f"waiting for the timer{'s' if len(timers) > 1 else ''} (Ctrl-C cancels)", err=True)
    try:
        for countdown in timers:
            while countdown.is_alive():
                countdown.join(0.5)  # a short join, so Ctrl-C is seen at once
    except KeyboardInterrupt:
        raise _fail("timer cancelled", code=130) from None


@app.command("config")
def config_command() -> None:
    """Print the effective configuration (TOML file + SKILLCALL_* variables) and the file it came from."""
    from .config import config_path

    path = config_path()
    config = _config()
    typer.echo(f"# {path}{'' if path.exists() else ' (not present: defaults)'}")
    typer.echo(json.dumps(config.model_dump(mode="json"), indent=2, ensure_ascii=False))


examples_app = typer.Typer(help="Work with the example files the router is trained on.", no_args_is_help=True)
app.add_typer(examples_app, name="examples")


@examples_app.command("check")
def examples_check() -> None:
    """Validate every example file: format, calls, spans, duplicates. Per-skill counts; exit 1 on any problem."""
    from finetune.examples import load_examples

    config = _config()
    example_set = load_examples(config.example_dirs(), _registry(config))
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
    fmt: Annotated[Literal["jsonl", "alpaca", "chatml", "function-calls"],
                   typer.Option("--format", help="jsonl: what `skillcall train` reads; alpaca, chatml or "
                                "function-calls: the same splits for other trainers, written to "
                                "OUT/FORMAT/.")] = "jsonl",
    skill_list: Annotated[Literal["none", "names", "full"],
                          typer.Option(help="Other formats: skills listed after the instruction (none: as the "
                                       "router is trained).")] = "none",
) -> None:
    """Example files -> train/validation/test JSONL (80/10/10 per skill), deterministic for a seed."""
    from finetune.dataset import DatasetOptions, build_dataset
    from finetune.examples import load_examples
    from finetune.formats import FormatOptions, export_dataset

    config = _config()
    example_set = load_examples(config.example_dirs(), _registry(config))
    result = build_dataset(example_set, DatasetOptions(out, seed)) if fmt == "jsonl" else \
        export_dataset(example_set, DatasetOptions(out / fmt, seed), FormatOptions(fmt, skill_list))
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
    n: Annotated[int | None, typer.Option("-n", min=1, help="How many new valid rows to append (20); with "
                                          "--from-docs, the questions asked for per chunk (5).")] = None,
    model: Annotated[str, typer.Option(help="Chat model name.")] = "gpt-4o-mini",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL (default: OpenAI).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=50, help="Rows asked for per request.")] = 10,
    from_docs: Annotated[Path | None, typer.Option("--from-docs", help="A folder of text documents: questions "
                                                   "each chunk answers become rows (e.g. --skill ask).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="--from-docs: characters per chunk.")] = 512,
    step_size: Annotated[int, typer.Option(min=1, help="--from-docs: characters from one chunk's start to the "
                                           "next's (less than --chunk-size overlaps them).")] = 512,
    max_file_mb: Annotated[float, typer.Option(min=0, help="--from-docs: larger files are skipped.")] = 10.0,
) -> None:
    """Ask a chat model (function calling) for new examples of a skill, or for questions about your documents
    (--from-docs); append the valid, new ones."""
    from tqdm import tqdm

    from finetune.documents import ChunkOptions, estimate_chunks, find_documents
    from finetune.examples import read_examples
    from finetune.generate import GenerateOptions, generate

    wanted = n or (5 if from_docs else 20)
    chunking = ChunkOptions(chunk_size, step_size, max_file_mb)
    options = GenerateOptions(skill=skill, n=wanted, model=model, base_url=base_url, batch_size=batch_size,
                              from_docs=from_docs, chunking=chunking)  # fmt: skip
    config = _config()
    registry = _registry(config)
    folder = _examples_folder(config, registry, skill)
    others = [e.text for name, e in read_examples(config.example_dirs(), registry).rows() if name != skill]
    if from_docs is not None:
        documents, passed_over = find_documents(from_docs, chunking)
        if not documents:
            for skipped in passed_over:
                typer.echo(f"skipped {skipped}", err=True)
            raise _fail(f"no text files under {from_docs}; --from-docs reads UTF-8 text files (.txt, .md, ...)")
        bar = tqdm(total=estimate_chunks(documents, chunking), unit="chunk", desc=f"{skill} from documents")
    else:
        bar = tqdm(total=wanted, unit="row", desc=f"generate {skill}")
    with bar:
        result = generate(options, registry, folder, progress=bar.update, others=others)
    for skipped in result.skipped:
        typer.echo(f"skipped {skipped}", err=True)
    for row, reason in result.rejected:
        typer.echo(f"rejected: {reason}: {row}", err=True)
    source = f" from {result.chunks} chunk(s)" if from_docs is not None else ""
    typer.echo(f"appended {len(result.added)} row(s) to {result.path}{source} ({len(result.rejected)} rejected, "
               f"{result.requests} request(s))")  # fmt: skip
    if from_docs is None and len(result.added) < wanted:
        raise _fail(f"only {len(result.added)} of {wanted} rows were valid and new; run again for more")


def _router(config, registry, kind: str | None = None, **updates):
    """The configured router (loaded once per command), warning when the examples changed since training.
    ``kind`` overrides the configured kind when given; ``updates`` replace options as they are (None included)."""
    from finetune.examples import read_examples

    from .routers import load_router

    options = config.router.model_copy(update={**updates, **({"kind": kind} if kind else {})})
    fingerprint = read_examples(config.example_dirs(), registry).fingerprint() if options.kind != "openai" else None
    return load_router(options, registry, fingerprint)


@app.command("route")
def route_command(
    text: Annotated[list[str] | None, typer.Argument(help="Utterances; each is routed on its own.")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help='Rows {"text": ...}; prints them with "call".')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per utterance, with timings.")] = False,
    router: Annotated[str | None, typer.Option(help="llama.cpp, transformers or openai (default: config).")] = None,
) -> None:
    """Text -> canonical skill call, one per line (several requests: up to three calls joined by "; ")."""
    from finetune.dataset import read_jsonl

    if not text and jsonl is None:
        raise _fail("give utterances or --jsonl FILE", 2)
    config = _config()
    registry = _registry(config)
    rows = read_jsonl(jsonl) if jsonl else [{"text": t} for t in text or []]
    routing = _router(config, registry, kind=router)
    for row in rows:
        result = routing.route_result(row["text"])
        if jsonl:
            typer.echo(_json_line({**row, "call": str(result.calls)}))
        elif as_json:
            typer.echo(_json_line({"text": row["text"], "call": str(result.calls), "raw": result.raw,
                                   "ms": round(1000 * result.seconds, 1), "prompt_tokens": result.prompt_tokens,
                                   "generated_tokens": result.generated_tokens,
                                   "forced_tokens": result.forced_tokens, "drafted_tokens": result.drafted_tokens,
                                   "evaluations": result.evaluations, "consulted": result.consulted,
                                   "fallback": result.reason, "dropped": result.dropped}))  # fmt: skip
        else:
            typer.echo(str(result.calls))


@app.command("run")
def run_command(text: Annotated[list[str], typer.Argument(help="What you would say.")]) -> None:
    """Route the text and run the skill (or skills, for several requests); print the replies."""
    config = _config()
    held: list = []
    registry = _registry(config, hold=held.append)
    routed = _router(config, registry).route_result(" ".join(text))
    typer.echo(f"-> {routed.calls}", err=True)
    if routed.dropped:
        from .daemon import more_than_said

        typer.echo(more_than_said(routed.dropped), err=True)
    _run_calls(registry, routed.calls, held)


def _wake_name(config) -> str | None:
    """The wake phrase as a name the router learns ("otto" -> "Otto")."""
    phrase = config.daemon.wake.phrase
    return phrase.title() if phrase else None


def _train_bar():
    """A progress bar per router trained, with the loss (smoothed) and each validation's line."""
    from tqdm import tqdm

    bars: dict[Path, tqdm] = {}
    smoothed: dict[Path, float] = {}

    def show(step) -> None:
        if step.out not in bars:
            bars[step.out] = tqdm(total=step.total, initial=step.step - 1, unit="step", desc=f"train {step.out}")
        bar, last = bars[step.out], smoothed.get(step.out)
        smoothed[step.out] = step.loss if last is None else 0.9 * last + 0.1 * step.loss
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed[step.out]:.3f}")
        if step.validation_loss is not None:
            bar.write(f"step {step.step}: validation loss {step.validation_loss:.4f}, call accuracy "
                      f"{step.call_accuracy:.3f}")  # fmt: skip
        if step.step == step.total:
            bar.close()

    return show


@app.command("train")
@model_options(TrainOptions, groups=("lora",), skip=("wake", "lora.alpha"),
               names={"learning_rate": ("--learning-rate", "--lr"), "four_bit": ("--4bit",),
                      "lora.r": ("--rank", "--lora-r")})  # fmt: skip
def train_command(
    recipe: Annotated[Path | None, typer.Option("--config", help="A TOML file of these options, e.g. the recipe a "
                                                "router folder holds (router/recipe.toml): the options given here "
                                                "override it.")] = None,  # fmt: skip
    *,
    given: dict,
) -> None:
    """LoRA fine-tune of the router on the dataset, then export for llama.cpp. The options are TrainOptions'
    (finetune/train/options.py); the router folder gets the recipe it was made by (recipe.toml)."""
    from finetune.train import train, train_options

    config = _config()
    options = train_options(recipe, **given, wake=_wake_name(config))
    result = train(options, _registry(config), _train_bar())
    if not result.card:  # another process under `accelerate launch`: the main one writes and reports the router
        return
    for written in [result, *result.members]:
        metrics, training = written.card.metrics, written.card.training
        seen = " (rows it trained on)" if written.card.dataset.validation_in_training else ""
        typer.echo(f"router written to {written.out}: validation call accuracy "
                   f"{metrics.validation_call_accuracy:.3f}{seen}, {training.steps} steps in "
                   f"{training.seconds:.0f} s")  # fmt: skip


@app.command("eval")
def eval_command(
    data: Annotated[Path | None, typer.Option(help='Rows {"text", "call"} (default: the test split).')] = None,
    router: Annotated[str | None, typer.Option(help="llama.cpp, transformers or openai (default: config).")] = None,
    base: Annotated[bool, typer.Option(help="Also evaluate the untuned base with the same prompt.")] = True,
    out: Annotated[Path, typer.Option(help="Folder for the confusion-matrix PNGs.")] = Path("eval"),
    show_misses: Annotated[int, typer.Option(help="How many misses to list.")] = 20,
    known_values: Annotated[bool, typer.Option(help="Let skills limit their values to what this machine has "
                                               "(runapp: installed apps), as routing does; off by default, as the "
                                               "rows may name apps this machine lacks.")] = False,
) -> None:
    """Accuracy (exact call, skill, arguments), per-skill table, confusion PNG, latency; tuned vs untuned base."""
    from finetune.dataset import read_jsonl, router_test_split
    from finetune.evaluate import evaluate, plot_confusion

    config = _config()
    registry = _registry(config)
    tuned = _router(config, registry, kind=router, known_values=known_values)
    rows = read_jsonl(data, ("text", "call")) if data is not None else \
        router_test_split(config.example_dirs(), registry, tuned.card)
    if not rows:
        raise _fail(f"no rows to evaluate in {data or 'the test split'}")
    reports = {}
    reports[f"{tuned.name} (tuned)" if tuned.card else tuned.name] = evaluate(tuned, rows, registry)
    if base and tuned.card:
        untuned = _router(config, registry, kind=router, router_dir=None, known_values=known_values,
                          template=tuned.card.template, skill_list=tuned.card.skill_list)  # fmt: skip
        reports[f"{untuned.name} (untuned base)"] = evaluate(untuned, rows, registry)
    names = list(reports)
    typer.echo(f"{len(rows)} rows" + (f" from {data}" if data else " (test split of the example files)"))
    typer.echo(f"{'':24}" + "".join(f"{n:>28}" for n in names))
    for label, key in (("exact-call accuracy", "exact_accuracy"), ("skill-name accuracy", "skill_accuracy"),
                       ("argument accuracy", "argument_accuracy"), ("latency p50 (ms)", "latency_p50_ms"),
                       ("latency p95 (ms)", "latency_p95_ms")):  # fmt: skip
        typer.echo(f"{label:24}" + "".join(f"{reports[n].summary()[key]:>28}" for n in names))
        if key == "exact_accuracy":  # how far these rows may sit from more rows like them
            cells = ("{:.3f}–{:.3f}".format(*reports[n].exact_interval) for n in names)
            typer.echo(f"{'  95 % interval':24}" + "".join(f"{cell:>28}" for cell in cells))
    typer.echo("\nper skill (rows, exact, right skill):")
    first = reports[names[0]]
    for skill in sorted(first.per_skill):
        cells = "".join(f"{str(tuple(reports[n].per_skill[skill][k] for k in ('rows', 'exact', 'skill'))):>28}"
                        for n in names)  # fmt: skip
        typer.echo(f"{skill:24}{cells}")
    for name, report in reports.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        try:
            typer.echo(f"confusion matrix: {plot_confusion(report, out / f'confusion-{slug}.png', name)}")
        except ImportError:
            typer.echo("confusion matrix: not drawn, matplotlib is missing (pip install matplotlib)", err=True)
            break
        except OSError as exc:
            typer.echo(f"confusion matrix: cannot write it to {out} ({exc}); choose another --out", err=True)
            break
    for label, summary in (("single-call rows", lambda r: r.single_summary()), ("compound rows", lambda r: r.compound)):
        cells = [summary(reports[n]) for n in names]
        if cells[0]["rows"]:
            shown = (f"{c['exact']}/{c['rows']} exact" + (f", {c['split']} split" if "split" in c else "")
                     for c in cells)  # fmt: skip
            typer.echo(f"{label:24}" + "".join(f"{cell:>28}" for cell in shown))
    for miss in first.misses[:show_misses]:
        typer.echo(f"miss: {miss.text!r}: expected {miss.expected}, got {miss.got}")


@app.command("transcribe")
def transcribe_command(
    files: Annotated[list[Path], typer.Argument(help="WAV/FLAC files (any rate, any channels).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file, with timings.")] = False,
) -> None:
    """Speech -> text with the configured Whisper."""
    from .audio import read_audio
    from .transcribe import load_transcriber

    config = _config()
    transcriber = load_transcriber(config.transcriber, config.daemon.vad)  # the VAD `listen` hears speech with
    for path in files:
        transcript = transcriber.transcribe(read_audio(path))
        if as_json:
            typer.echo(json.dumps({"file": str(path), "text": transcript.text, "language": transcript.language,
                                   "audio_s": round(transcript.audio_s, 3),
                                   "transcribe_ms": round(1000 * transcript.seconds, 1),
                                   "dropped": transcript.dropped}, ensure_ascii=False))  # fmt: skip
        else:
            typer.echo(transcript.text)  # one line per file, empty when nothing was said
            if not transcript.text:
                typer.echo(f"{path}: no speech found" + (f" ({transcript.dropped})" if transcript.dropped else ""),
                           err=True)  # fmt: skip


@app.command("devices")
def devices_command() -> None:
    """List audio input devices (use the index or name as daemon.audio.device)."""
    from .audio import list_devices

    devices = list_devices()
    if not devices:
        raise _fail("no audio input device found; plug in a microphone (or check `arecord -l`)")
    for device in devices:
        mark = "*" if device["default"] else " "
        typer.echo(f"{mark} {device['index']:>3}  {device['name']}  ({device['channels']} ch, "
                   f"{device['samplerate']:.0f} Hz)")  # fmt: skip


@app.command("listen")
def listen_command(
    input_file: Annotated[Path | None, typer.Option("--input", help="Play this WAV/FLAC as if live instead of "
                                                                     "the microphone.")] = None,  # fmt: skip
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Route but run no skill.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per utterance.")] = False,
    wake: Annotated[bool | None, typer.Option("--wake/--no-wake", help="Require the wake phrase (default: on "
                                                                         "for the microphone, off for --input).")] = None,
    speak: Annotated[bool | None, typer.Option("--speak/--no-speak", help="Speak replies (default: config).")] = None,
    realtime: Annotated[bool, typer.Option(help="With --input: pace the file in real time.")] = False,
    device: Annotated[str | None, typer.Option(help="Input device index or name (`skillcall devices`).")] = None,
) -> None:
    """The daemon: microphone (or --input FILE) -> Whisper -> router -> skills. Ctrl-C or SIGTERM stops it."""
    import signal
    import threading

    from .audio import AudioOptions, file_chunks, microphone_chunks
    from .corrections import Corrector
    from .daemon import Daemon
    from .history import Announcement, History
    from .transcribe import load_transcriber

    stop = threading.Event()
    lock = threading.Lock()

    def emit(turn) -> None:
        with lock, _closed_output(stop):
            if as_json:
                typer.echo(json.dumps(turn.as_dict(), ensure_ascii=False))
            elif isinstance(turn, Announcement):
                typer.echo(f"⏰ {turn.text}")
            else:
                typer.echo(f"> {turn.text}\n  {turn.call or '-'}" + (f"\n  {turn.reply}" if turn.reply else "")
                           + (f"  [{turn.skipped}]" if turn.skipped else ""))  # fmt: skip

    loaded = threading.Event()

    def on_signal(*_) -> None:
        stop.set()
        if not loaded.is_set():  # nothing to finish while the models load (a first run merges routers: tens of
            typer.echo("stopped", err=True)  # seconds), so stop now; skill workers die with the process
            os._exit(0)

    # installed before the models load, so an early stop is clean too; restored afterwards
    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        config = _config()
        options = config.daemon
        if speak is not None:
            options = options.model_copy(update={"speak": speak})
        if device is not None:
            options.audio = AudioOptions(**{**options.audio.model_dump(), "device": device})
        if not as_json:
            typer.echo("loading the models", err=True)
        daemon_box: list = []
        registry = _registry(config, notify=lambda text: daemon_box[0].announce(text) if daemon_box else None)
        threading.Thread(target=registry.warm, name="warm-skills", daemon=True).start()  # while the models load
        history = History(options.history_db)
        corrector = None if dry_run or not options.correct_window_s else \
            Corrector(registry, config.example_dirs(), config.examples_dir, history, options.wake)
        daemon = Daemon(registry, load_transcriber(config.transcriber), _router(config, registry), options,
                        history, emit, dry_run=dry_run, use_wake=wake if wake is not None else input_file is None,
                        corrector=corrector)  # fmt: skip
        daemon_box.append(daemon)
        loaded.set()
        chunks = file_chunks(input_file, realtime, stop) if input_file else \
            microphone_chunks(options.audio, stop, daemon.mute)
        if not as_json:
            typer.echo("listening" + (f" to {input_file}" if input_file else "") + " (Ctrl-C to stop)", err=True)
        if not daemon.run(chunks, stop) and input_file and not stop.is_set():
            typer.echo(f"no speech found in {input_file}", err=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop.is_set():
        typer.echo("stopped", err=True)


@contextlib.contextmanager
def _closed_output(stop) -> Iterator[None]:
    """Stop listening quietly when whoever reads the output has gone (``listen --json | head -1``)."""
    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        stop.set()


@app.command("history")
def history_command(
    last: Annotated[int, typer.Option("--last", min=1, help="How many turns.")] = 20,
    skill: Annotated[str | None, typer.Option(help="Only turns with a call of this skill.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only turns where a call or a stage failed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per turn.")] = False,
) -> None:
    """The daemon's turns, newest first: what was heard, the call, the reply, whether it ran, the latencies. The
    number in front is the TURN that `skillcall correct` takes."""
    from .history import History

    config = _config()
    history = History(config.daemon.history_db, create=False, timeout_s=2)
    turns = history.recent(last, skill=skill, failed=failed)
    if not turns and not as_json:
        typer.echo("no turns" + (" match" if skill or failed else " yet") + f" in {history.path}", err=True)
    for turn in turns:
        typer.echo(_json_line(turn) if as_json else _shown_turn(turn))


def _shown_turn(turn: dict) -> str:
    """A turn for a terminal: number, local time and the words; then each call with what it gave; then where the
    time went."""
    from datetime import datetime

    from skills import printable

    try:
        when = datetime.fromisoformat(turn["time"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        when = str(turn["time"])
    heard = f'"{printable(turn["text"])}"' if turn["text"] else "-"
    lines = [f"#{turn['id']:<5} {when}  {heard}"]
    if (turn["skipped"] or "").startswith("no speech") or turn["call"] is None:
        why = ": ".join(part for part in (turn["skipped"], turn.get("detail")) if part)
        return lines[0] + (f"  ({printable(why)})" if why else "")
    runs = turn["calls"] or [{"call": turn["call"], "ok": turn["ok"], "reply": turn["reply"]}]
    for run in runs:
        state = "ok" if run["ok"] else "not run" if run["ok"] is None else "failed"
        state = printable(turn["skipped"]) if run["ok"] is None and turn["skipped"] else state
        lines.append(f"       {run['call']}  [{state}]" + (f"  {printable(run['reply'])}" if run["reply"] else ""))
    if turn["correction"]:
        lines.append(f"       corrected to {turn['correction']['call']}  ({turn['correction']['path']})")
    stages = [(name, turn[f"{name}_ms"]) for name in ("vad", "transcribe", "route", "dispatch", "total")]
    lines.append("       " + " · ".join(f"{name} {ms:.0f}" for name, ms in stages if ms) + " ms")
    return "\n".join(lines)


@app.command("correct")
def correct_command(
    turn: Annotated[int, typer.Argument(help="The turn's number in `skillcall history`.")],
    call: Annotated[str, typer.Argument(help='The call it should have been, e.g. \'weather(location="Paris")\', '
                                        "or other.")],
) -> None:
    """Record the right call for a turn: checked like an example row (its text arguments copied from the words
    heard) and appended to the skill's example file, so the next retrain learns it."""
    from .corrections import Corrector, Learnt
    from .history import History

    config = _config()
    registry = _registry(config)
    history = History(config.daemon.history_db, create=False, timeout_s=2)
    learnt = Corrector(registry, config.example_dirs(), config.examples_dir, history,
                       config.daemon.wake).correct_turn(turn, call)  # fmt: skip
    said = {Learnt.ADDED: "learnt", Learnt.REPLACED: "learnt (this turn's earlier correction replaced)",
            Learnt.KNOWN: "already an example"}[learnt.learnt]  # fmt: skip
    typer.echo(f'{said}: "{learnt.text}" -> {learnt.call}  ({learnt.path}:{learnt.line})')
    typer.echo("the router learns it when retrained: skillcall dataset && skillcall train --init router", err=True)


@app.command("new-skill")
def new_skill_command(
    name: Annotated[str, typer.Argument(help="The skill's name (lower case, e.g. set_alarm).")],
    parameters: Annotated[list[str] | None, typer.Argument(help="Its parameters, NAME:TYPE or NAME:TYPE=DEFAULT "
                                                           "(str, int, float, bool; =None: optional), e.g. "
                                                           "city:str times:int=1.")] = None,
    description: Annotated[str | None, typer.Option(help="One line saying what it does (its docstring).")] = None,
) -> None:
    """Write a skill file (typed signature, @skill, docstring) and its example file with seed rows into your
    skills folder, then print the next steps."""
    from .scaffold import NewParameter, NewSkillOptions, new_skill

    config = _config()
    options = NewSkillOptions(name, tuple(NewParameter.parse(spec) for spec in parameters or []), description,
                              config.skills_dir)  # fmt: skip
    written = new_skill(options, _registry(config))
    typer.echo(f"wrote {written.skill_path}\nwrote {written.examples_path} ({len(written.seeds)} seed rows)\nnext:\n"
               f"  1. write what {name} does in {written.skill_path.name}; make the seed rows things you would say\n"
               f"  2. skillcall generate --skill {name} -n 50   # more rows from a chat model (or write them)\n"
               "  3. skillcall examples check\n"
               "  4. skillcall dataset && skillcall train --init router   # retrain: the router learns it")  # fmt: skip


@app.command("convert-whisper")
def convert_whisper_command(
    model_dir: Annotated[Path, typer.Argument(help="faster-whisper (CTranslate2) model folder.")],
    out: Annotated[Path, typer.Argument(help="openai-whisper checkpoint to write (.pt).")],
) -> None:
    """A faster-whisper Whisper model -> an openai-whisper checkpoint (for the openai-whisper backend)."""
    from .whisper_convert import convert_whisper

    typer.echo(f"wrote {convert_whisper(model_dir, out)}")


@app.command("install-service")
def install_service_command(
    print_only: Annotated[bool, typer.Option("--print", help="Print the unit instead of writing it.")] = False,
) -> None:
    """Write a systemd user unit that runs `skillcall listen` at login."""
    import shutil
    import sys

    executable = shutil.which("skillcall") or f"{sys.executable} -m assistant.cli"
    unit = (
        "[Unit]\nDescription=skillcall voice assistant\nAfter=sound.target pipewire.service pulseaudio.service\n\n"
        f"[Service]\nExecStart={executable} listen\nRestart=on-failure\nRestartSec=5\n\n"
        "[Install]\nWantedBy=default.target\n"
    )
    if print_only:
        typer.echo(unit, nl=False)
        return
    import platformdirs

    path = Path(platformdirs.user_config_dir("systemd")) / "user" / "skillcall.service"
    try:
        kept = path.with_suffix(".service.bak") if path.is_file() and path.read_text() != unit else None
        if kept:
            path.replace(kept)  # a unit you edited is kept, not overwritten
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(unit)
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot write {path} ({exc}); use --print and install the unit yourself") from None
    typer.echo(f"wrote {path}" + (f" (the one there before is {kept})" if kept else "") + "\nenable it with: "
               "systemctl --user daemon-reload && systemctl --user enable --now skillcall")  # fmt: skip


def _examples_folder(config, registry, skill: str) -> Path:
    """Where a skill's example file lives: where it already is, else beside the skill (built-in or yours)."""
    from .corrections import example_path

    return example_path(registry, skill, config.example_dirs(), config.examples_dir).parent


def main(argv: list[str] | None = None) -> None:
    app(args=argv)


if __name__ == "__main__":
    main()
