"""The daemon: utterance -> transcribe -> wake phrase -> route -> confirm -> dispatch -> reply, every turn logged.

Audio comes from the microphone or a file played through the same streaming path; the segmenter cuts it into
utterances. Replies print, and are spoken when enabled (the microphone is muted meanwhile, so the daemon never
transcribes its own voice). Risky skills (``@skill(risky=True)``, e.g. runapp) follow a confirmation policy.
"No, I meant the weather in Paris" or "That's wrong" right after a turn corrects it (``assistant.corrections``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from skills import MAX_CALLS, CallSequence, Registry, SkillCall, SkillcallError, UserPath

from .audio import AudioOptions
from .corrections import SPOKEN_REFUSAL, SPOKEN_REFUSALS, Corrector, spoken_correction
from .early import Early, EarlyStart
from .history import Announcement, CallRun, History, Skipped, Turn
from .routers import Router
from .transcribe import Transcriber
from .vad import Segmenter, Utterance, VadOptions
from .wake import WakeOptions, check_wake

logger = logging.getLogger(__name__)
_NO_WAKE = WakeOptions(phrase=None)
_YES_WORDS = {"yes", "yeah", "yep", "yup", "sure", "ok", "okay", "alright", "confirm", "confirmed", "correct"}
_YES_PHRASES = ("do it", "go ahead", "please do")
_NO_WORDS = {"no", "nope", "nah", "cancel", "don't", "dont", "not", "stop", "never", "mind", "wait", "forget", "abort"}
_ANSWER_FILLERS = {"um", "uh", "er", "hmm", "oh", "well", "so", "please", "thanks", "thank", "you", "just", "it", "do",
                   "go", "ahead", "that"}  # fmt: skip


def confirmation_answer(text: str) -> bool | None:
    """A spoken answer to "Shall I run …?": True for a yes ("Yes.", "Okay, go ahead."), False for a no ("No.",
    "Okay, never mind.", "Yes… no, wait."; a no anywhere wins), None when the utterance is anything more than an
    answer ("Sure, what time is it?", "Cancel the timer."): that is a new request, and the question lapses."""
    words = re.sub(r"[^\w']+", " ", text.casefold()).split()
    if not words or any(w not in _YES_WORDS | _NO_WORDS | _ANSWER_FILLERS for w in words):
        return None
    if any(w in _NO_WORDS for w in words):
        return False
    said = " ".join(words)
    return True if any(w in _YES_WORDS for w in words) or any(p in said for p in _YES_PHRASES) else None


def more_than_said(dropped: int) -> str:
    """What is said when an utterance held more requests than a turn runs."""
    return (f"That was more than {MAX_CALLS} requests; I did the first {MAX_CALLS}. Say the "
            f"{'other one' if dropped == 1 else 'others'} again.")  # fmt: skip


def _shown(turn: Turn) -> bool:
    """Whether a turn is shown (printed, counted): all but the utterances the transcriber dropped as noise."""
    return turn.skipped is not Skipped.NO_SPEECH


class DaemonOptions(BaseModel):
    """How ``skillcall listen`` behaves. The ``[daemon]`` section of the config (with its sub-sections)."""

    model_config = ConfigDict(extra="forbid")

    speak: bool = Field(False, description="Speak replies aloud.")
    tts_command: list[str] = Field(default_factory=lambda: ["espeak-ng", "-s", "165"],
                                   description="Text-to-speech command; the reply is its last argument.")  # fmt: skip
    confirm: Literal["never", "risky", "always"] = Field("risky", description="Which calls need a spoken 'yes'.")
    confirm_window_s: float = Field(10.0, gt=0, description="How long a confirmation question stays open.")
    early_ms: int = Field(150, ge=0, description="Once speech has paused this long, the words so far are "
                          "transcribed and routed while the VAD waits out vad.end_silence_ms, and kept when no "
                          "speech came back: the call is ready about when the silence ends. 0 = off.")  # fmt: skip
    history_db: UserPath | None = Field(None, description="SQLite file of turns; None = the platform's data folder.")
    correct_window_s: float = Field(30.0, ge=0, description="How long after a turn a spoken correction ('No, I "
                                    "meant …', 'That's wrong') applies to it; 0 = none.")  # fmt: skip
    wake: WakeOptions = Field(default_factory=WakeOptions)
    vad: VadOptions = Field(default_factory=VadOptions)
    audio: AudioOptions = Field(default_factory=AudioOptions)

    @model_validator(mode="after")
    def _early_before_the_end(self) -> DaemonOptions:
        if self.early_ms >= self.vad.end_silence_ms:
            raise ValueError(f"early_ms ({self.early_ms}) must be below vad.end_silence_ms "
                             f"({self.vad.end_silence_ms}), or 0 for no early start")  # fmt: skip
        return self


@dataclass(frozen=True)
class _Correctable:
    """The last routed turn, which a spoken correction corrects."""

    turn: int | None
    text: str
    """The words routed (the wake phrase taken off)."""
    at: float


@dataclass(frozen=True)
class _Correcting:
    """An open question about a correction: "What did you mean?" (``calls`` None) or "Did you mean …?"."""

    target: _Correctable
    calls: CallSequence | None
    until: float


class Daemon:
    """One conversation: feed it audio chunks (``run``) or utterances (``handle``)."""

    def __init__(
        self, registry: Registry, transcriber: Transcriber, router: Router, options: DaemonOptions | None = None,
        history: History | None = None, emit: Callable[[Turn | Announcement], None] | None = None, dry_run: bool = False,
        use_wake: bool = True, mute: threading.Event | None = None, corrector: Corrector | None = None,
    ) -> None:  # fmt: skip
        self.registry, self.transcriber, self.router = registry, transcriber, router
        self.options = options or DaemonOptions()
        self.history, self.emit, self.dry_run, self.use_wake = history, emit, dry_run, use_wake
        self.mute = mute or threading.Event()
        self.segmenter = Segmenter(self.options.vad)
        self.follow_up_until = 0.0
        self.pending: tuple[list[SkillCall], float] | None = None
        """The calls waiting for a spoken yes (the first is asked about), and until when the question holds."""
        self._speech_lock = threading.Lock()
        self._heard_while_speaking = threading.Event()  # set by _say, maybe on a timer's thread; run() resets
        self.clock: Callable[[], float] = time.monotonic  # what the follow-up and confirmation windows count in
        self.corrector = corrector
        """Where spoken corrections are learnt; None: none are (the words are routed as any others)."""
        self.correctable: _Correctable | None = None
        self.correcting: _Correcting | None = None
        self._logged_id: int | None = None
        self.early = EarlyStart()
        self._silence_ms = 0.0  # the pause so far, as the last chunk left it

    # -- audio -------------------------------------------------------------------------------------------------
    def run(self, chunks: Iterable[np.ndarray], stop: threading.Event | None = None) -> int:
        """Segment the stream and handle each utterance until it ends or ``stop`` is set; returns the turns that
        held speech (not those the transcriber dropped as noise)."""
        stop = stop or threading.Event()
        turns = 0
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                self._forget_echo()
                for utterance in self.segmenter.feed(chunk):  # the microphone drops its audio itself while muted
                    turns += _shown(self.handle(utterance))
                self._begin_early()
            if not stop.is_set():
                self._forget_echo()
                for utterance in self.segmenter.flush():
                    turns += _shown(self.handle(utterance))
        finally:
            self.early.settle()  # nothing runs on after the stream: the models are free for whoever comes next
        return turns

    def _begin_early(self) -> None:
        """As a pause reaches early_ms, start on the words so far (``assistant.early``): once a pause."""
        silence, self._silence_ms = self._silence_ms, 1000 * self.segmenter.silence_s
        if not self.options.early_ms or not silence < self.options.early_ms <= self._silence_ms:
            return
        utterance = self.segmenter.so_far()
        if utterance is not None:
            logger.debug("early start on %.2f-%.2f s", utterance.start_s, utterance.speech_end_s)
            self.early.begin(utterance, self.transcriber, self.router, *self._listening(self.clock()))

    def _forget_echo(self) -> None:
        """After speech out, drop what the segmenter holds (the reply's echo), here on the audio thread: a timer's
        announcement speaks from its own thread, which must not touch the segmenter while it is fed."""
        if self._heard_while_speaking.is_set():
            self._heard_while_speaking.clear()
            self.segmenter.reset()

    # -- one turn ----------------------------------------------------------------------------------------------
    def handle(self, utterance: Utterance) -> Turn:
        """Transcribe, wake, route, confirm, dispatch, reply and log one utterance. A stage that fails (the
        transcriber, the router) fails this turn only: it is logged with the reason, and the daemon listens on."""
        heard_at, committed = self.clock(), time.perf_counter()
        turn = Turn(text="", audio_s=round(len(utterance.audio) / 16_000, 3), start_s=round(utterance.start_s, 3),
                    vad_ms=round(1000 * (utterance.detected_s - utterance.speech_end_s), 1))  # fmt: skip
        try:
            return self._handle(utterance, turn, heard_at, committed)
        except Exception as exc:  # a daemon outlives one bad turn; skills' own errors never reach here
            return self._failed(turn, heard_at, exc)

    def handle_text(self, text: str) -> Turn:
        """One turn from words already transcribed (typed input, tests): all that ``handle`` does after Whisper."""
        self.early.settle()  # the models are this thread's
        heard_at = self.clock()
        turn = Turn(text=text)
        try:
            return self._understand(turn, heard_at)
        except Exception as exc:
            return self._failed(turn, heard_at, exc)

    def _failed(self, turn: Turn, heard_at: float, exc: Exception) -> Turn:
        logger.exception("the turn failed")
        turn.ok, turn.skipped, turn.detail = False, Skipped.FAILED, f"{type(exc).__name__}: {exc}"
        return self._log(turn, heard_at)

    def _handle(self, utterance: Utterance, turn: Turn, heard_at: float, committed: float) -> Turn:
        early = self.early.take(utterance)  # the same speech, transcribed (and routed) in its pause
        # speech the VAD found: Whisper's inventions dropped
        transcript = early.transcript if early else self.transcriber.transcribe(utterance)
        turn.transcribe_ms, turn.early = round(1000 * transcript.seconds, 1), early is not None
        turn.text = transcript.text
        if not transcript.text:
            turn.skipped, turn.detail = Skipped.NO_SPEECH, str(transcript.dropped)
            return self._log(turn, heard_at)
        return self._understand(turn, heard_at, early, committed)

    def _listening(self, now: float) -> tuple[WakeOptions, bool]:
        """The wake phrase, and whether words need none now: a question is open (an answer needs no wake phrase),
        or the follow-up window."""
        asked = (self.pending is not None and now <= self.pending[1]) or \
            (self.correcting is not None and now <= self.correcting.until)  # fmt: skip
        return (self.options.wake if self.use_wake else _NO_WAKE), asked or now < self.follow_up_until

    def _understand(self, turn: Turn, heard_at: float, early: Early | None = None,
                    committed: float | None = None) -> Turn:  # fmt: skip
        """Wake phrase, an answer to a question, a correction, routing, dispatch, the reply: a turn's words."""
        woken = check_wake(turn.text, *self._listening(heard_at))
        if woken is None:
            turn.skipped = Skipped.NO_WAKE
            return self._log(turn, heard_at)
        if self.pending and woken.command.strip() and self._answer_confirmation(woken.command, turn, heard_at):
            return self._log(turn, heard_at)
        if self.corrector is not None and woken.command.strip() and self._correction(woken.command, turn, heard_at):
            self.follow_up_until = self.clock() + self.options.wake.follow_up_s
            return self._log(turn, heard_at)
        if not woken.command.strip():
            turn.skipped = Skipped.WAKE_ONLY
            turn.reply = "Yes?"
            self._say(turn.reply)
            self.follow_up_until = self.clock() + self.options.wake.follow_up_s
            return self._log(turn, heard_at)
        if early is not None and early.routed is not None and early.command == woken.command:
            routed, ready_at = early.routed, early.done_at
        else:
            routed, ready_at = self.router.route_result(woken.command), time.perf_counter()
        turn.route_ms = round(1000 * routed.seconds, 1)
        # end of speech -> call ready: the VAD's wait, then what was left to do once the utterance had ended
        turn.ready_ms = turn.route_ms if committed is None else \
            round(turn.vad_ms + 1000 * max(0.0, ready_at - committed), 1)  # fmt: skip
        calls = routed.calls
        turn.call, turn.route_reason = str(calls), routed.reason
        request = calls[0].name != "other"
        if not request:
            turn.skipped = Skipped.NOT_A_REQUEST
        elif self.dry_run:
            turn.skipped = Skipped.DRY_RUN
            turn.calls = [CallRun(str(call)) for call in calls]
        else:
            self._run_calls(list(calls), turn)
            if routed.dropped:
                self._reply(turn, more_than_said(routed.dropped))
        if woken.by_phrase or request:  # talk around it (the TV) never holds the window open
            self.follow_up_until = self.clock() + self.options.wake.follow_up_s  # from the end of the reply
        self._log(turn, heard_at)
        if len(calls) == 1:  # what "No, I meant …" corrects (a turn of several requests: `skillcall correct`)
            self.correctable = _Correctable(self._logged_id, woken.command, self.clock())
        return turn

    def _needs_confirmation(self, call: SkillCall) -> bool:
        policy = self.options.confirm
        return policy == "always" or (policy == "risky" and self.registry.get(call.name).risky)

    def _run_calls(self, calls: list[SkillCall], turn: Turn) -> None:
        """Run the calls in the order said, up to one that needs a spoken yes: that one is asked about, and it and
        the calls after it wait for the answer."""
        for index, call in enumerate(calls):
            if self._needs_confirmation(call):
                turn.skipped = Skipped.AWAITING_CONFIRMATION
                self._reply(turn, f"Shall I run {call}? Say yes to confirm.")
                self.pending = (calls[index:], self.clock() + self.options.confirm_window_s)  # from the question
                return
            self._dispatch(call, turn)

    def _answer_confirmation(self, text: str, turn: Turn, now: float) -> bool:
        calls, deadline = self.pending  # type: ignore[misc]
        self.pending = None
        if now > deadline:
            return False
        answer = confirmation_answer(text)
        if answer is None:
            return False
        turn.call = str(CallSequence(calls))
        if answer:
            self._dispatch(calls[0], turn)
        else:
            turn.skipped = Skipped.CANCELLED
            turn.calls.append(CallRun(str(calls[0]), reply="cancelled"))
            self._reply(turn, "Okay, cancelled.")
        self._run_calls(calls[1:], turn)  # the requests said after it
        return True

    def _dispatch(self, call: SkillCall, turn: Turn) -> None:
        result = self.registry.dispatch(call)
        turn.calls.append(CallRun(str(call), result.ok, result.text, round(1000 * result.seconds, 1)))
        turn.dispatch_ms = round(turn.dispatch_ms + 1000 * result.seconds, 1)
        turn.ok = result.ok if turn.ok is None else turn.ok and result.ok
        self._reply(turn, result.text)

    def _reply(self, turn: Turn, text: str) -> None:
        """Add to the turn's reply (the replies of several calls join in order) and say it."""
        if text:
            turn.reply = f"{turn.reply} {text}" if turn.reply else text
            self._say(text)

    def _log(self, turn: Turn, heard_at: float) -> Turn:
        ready = turn.ready_ms or turn.vad_ms + turn.transcribe_ms + turn.route_ms
        turn.total_ms = round(ready + turn.dispatch_ms, 1)
        if self.history is not None:
            self._logged_id = self.history.add(turn)
        if _shown(turn) and self.emit is not None:
            try:
                self.emit(turn)
            except Exception as exc:  # showing a turn fails: it is logged once, and the daemon listens on
                logger.warning("could not show the turn: %s: %s", type(exc).__name__, exc)
        logger.info("turn: %s", json.dumps(turn.as_dict(), ensure_ascii=False))
        return turn

    # -- spoken corrections -----------------------------------------------------------------------------------
    def _correction(self, text: str, turn: Turn, now: float) -> bool:
        """A correction of the last routed turn ("No, I meant the weather in Paris", "That's wrong."), or the
        answer to a question about one; False: the words are routed as usual."""
        asking, self.correcting = self.correcting, None
        if asking is not None and now <= asking.until:
            return self._answer_correction(asking, text, turn)
        said = spoken_correction(text)
        target = self.correctable
        if said is None or target is None or now - target.at > self.options.correct_window_s:
            return False
        if said.not_for_me:  # "I wasn't talking to you"
            self._learn(target, CallSequence([SkillCall("other")]), turn)
        elif not said.words:  # "That's wrong."
            self._ask_correction(target, None, "What did you mean?", turn)
        else:
            self._route_correction(target, said.words, turn, again=True)
        return True

    def _route_correction(self, target: _Correctable, words: str, turn: Turn, again: bool) -> None:
        """Route what was meant; learn it, or ask: "What did you mean?" when it is no request (once), "Did you
        mean …?" when the router was unsure (it consulted its ensemble)."""
        started = time.perf_counter()
        routed = self.router.route_result(words)
        turn.route_ms = round(turn.route_ms + 1000 * (time.perf_counter() - started), 1)
        turn.call = str(routed.calls)
        if routed.calls[0].name == "other":
            if again:
                self._ask_correction(target, None, "What did you mean?", turn)
            else:
                turn.skipped = Skipped.CORRECTION_NOT_UNDERSTOOD
                self._reply(turn, "Sorry, I still didn't get that.")
        elif routed.consulted:
            self._ask_correction(target, routed.calls, f"Did you mean {routed.calls}? Say yes to confirm.", turn)
        else:
            self._learn(target, routed.calls, turn)

    def _ask_correction(self, target: _Correctable, calls: CallSequence | None, question: str, turn: Turn) -> None:
        turn.skipped = Skipped.AWAITING_CORRECTION
        self._reply(turn, question)
        self.correcting = _Correcting(target, calls, self.clock() + self.options.confirm_window_s)

    def _answer_correction(self, asking: _Correcting, text: str, turn: Turn) -> bool:
        answer = confirmation_answer(text)
        if asking.calls is None:  # "What did you mean?": the answer is what was meant, or "never mind"
            if answer is False:
                turn.skipped = Skipped.CORRECTION_CANCELLED
                self._reply(turn, "Okay.")
            else:
                self._route_correction(asking.target, text, turn, again=False)
            return True
        if answer is None:  # "Did you mean …?" answered with a new request: the question lapses
            return False
        if answer:
            self._learn(asking.target, asking.calls, turn)
        else:
            turn.call, turn.skipped = str(asking.calls), Skipped.CORRECTION_CANCELLED
            self._reply(turn, "Okay, I won't learn that.")
        return True

    def _learn(self, target: _Correctable, calls: CallSequence, turn: Turn) -> None:
        """Learn the calls for the corrected turn's words, say so, then run them (what was meant is still wanted)."""
        assert self.corrector is not None
        turn.call = str(calls)
        try:
            self.corrector.learn(target.text, str(calls), target.turn)
            note = "Got it, I'll remember that."
        except SkillcallError as exc:  # not a span of what was heard, a conflicting row, the file, the database
            logger.info("correction of %r not learnt: %s", target.text, exc)
            note = SPOKEN_REFUSALS.get(getattr(exc, "refusal", None), SPOKEN_REFUSAL)
        self._reply(turn, note)
        if calls[0].name == "other":
            turn.skipped = Skipped.NOT_A_REQUEST
        elif self.dry_run:
            turn.skipped = Skipped.DRY_RUN
        else:
            self._run_calls(list(calls), turn)

    # -- speech out --------------------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        """Speak (when enabled) with the microphone muted, then forget any audio heard meanwhile."""
        if not self.options.speak or not text:
            return
        command = self.options.tts_command
        if not command or shutil.which(command[0]) is None:
            logger.warning("cannot speak: %s is not installed (apt-get install espeak-ng)", command[:1])
            return
        with self._speech_lock:
            self.mute.set()
            try:
                subprocess.run([*command, text], check=False, timeout=60, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                logger.warning("text-to-speech failed: %s", exc)
            finally:
                time.sleep(0.2)  # the room's echo
                self._heard_while_speaking.set()
                self.mute.clear()

    def announce(self, text: str) -> None:
        """For skills' later messages (timers): printed through ``emit`` and spoken."""
        if self.emit is not None:
            self.emit(Announcement(text))
        self._say(text)
