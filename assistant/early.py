"""Work begun in the pause: the words so far, transcribed and routed while the VAD waits to know they are all.

An utterance ends after ``vad.end_silence_ms`` of silence (400 ms): a shorter wait would cut people off in their
own pauses. But most of that wait is spent knowing, not hearing: once speech has paused for ``daemon.early_ms``,
the audio so far is all the utterance will hold unless speech comes back. So the daemon hands it to ``EarlyStart``,
which transcribes it, and routes it when it would be routed, on one worker thread while the VAD listens on. When the
utterance ends with no speech since (the same start and the same end of speech), the daemon keeps that work and the
call is ready as the silence ends, or soon after; when speech came back, the work is dropped and the whole utterance
is transcribed as usual. The words are never guessed: what is kept is Whisper's reading of the same speech (with
``early_ms`` of silence after it rather than the VAD's ``pre_roll_ms``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .routers import Router, RouteResult
from .transcribe import Transcriber, Transcript
from .vad import Utterance
from .wake import WakeOptions, check_wake

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Early:
    """What was made of an utterance in its pause."""

    start_s: float
    speech_end_s: float
    transcript: Transcript
    command: str | None
    """The words routed (the wake phrase taken off), or None when they were not routed (no wake phrase)."""
    routed: RouteResult | None
    """The route (it carries its own time, ``seconds``), or None."""
    done_at: float
    """``time.perf_counter()`` when the work was done."""


class EarlyStart:
    """One worker thread that transcribes and routes utterances in their pause. ``take`` and ``settle`` wait for
    what is in flight, so the transcriber and the router are never used from two threads at once. ``started`` and
    ``kept`` count the work begun and the work an utterance kept (the rest was a pause speech went on from)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._work: list[tuple[tuple[float, float], Future[Early]]] = []
        self.started = 0
        self.kept = 0

    def begin(self, utterance: Utterance, transcriber: Transcriber, router: Router, wake: WakeOptions,
              in_follow_up: bool) -> None:  # fmt: skip
        """Start on the utterance so far (once a pause: the daemon calls it as the pause reaches ``early_ms``). The
        words are routed when they would be: with the wake phrase, or ``in_follow_up``."""
        key = (utterance.start_s, utterance.speech_end_s)
        for _, pending in self._work:
            pending.cancel()  # an earlier pause of the same utterance, not started yet: speech came back since
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skillcall-early")
        self._work.append((key, self._pool.submit(_work_on, utterance, transcriber, router, wake, in_follow_up)))
        self.started += 1

    def take(self, utterance: Utterance) -> Early | None:
        """The work on this utterance when it was made in its last pause, after waiting for all work in flight.
        A transcription of it that failed raises here, as the same work done now would have."""
        found = None
        for key, done in self._settled():
            if key == (utterance.start_s, utterance.speech_end_s):
                found = done.result()
            elif done.exception() is not None:  # a pause that speech went on from: nothing depends on it
                logger.warning("early start on an earlier pause failed: %s", done.exception())
        self.kept += found is not None
        return found

    def settle(self) -> None:
        """Wait for the work in flight and drop it (the stream ended, or words come another way)."""
        for _, done in self._settled():
            if done.exception() is not None:
                logger.warning("early start failed: %s", done.exception())

    def _settled(self) -> list[tuple[tuple[float, float], Future[Early]]]:
        work, self._work = self._work, []
        wait([done for _, done in work])
        return [(key, done) for key, done in work if not done.cancelled()]


def _work_on(utterance: Utterance, transcriber: Transcriber, router: Router, wake: WakeOptions,
             in_follow_up: bool) -> Early:  # fmt: skip
    transcript = transcriber.transcribe(utterance)
    command, routed = None, None
    woken = check_wake(transcript.text, wake, in_follow_up) if transcript.text else None
    if woken is not None and woken.command.strip():
        try:
            command, routed = woken.command, router.route_result(woken.command)
        except Exception:  # the turn keeps the words and routes them again, failing there if it fails again
            logger.exception("early routing failed")
    return Early(utterance.start_s, utterance.speech_end_s, transcript, command, routed, time.perf_counter())
