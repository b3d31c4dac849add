"""Skills in worker processes: real workers forked from the zygote, real SIGKILLs, skills written as users write them."""

from __future__ import annotations

import logging
import os
import signal
import textwrap
import time

import pytest

from skills import Outcome, SkillCall, SkillContext, load_registry, worker

pytestmark = pytest.mark.skipif(not worker.SUPPORTED, reason="no os.fork: skills run in the caller's process")

SKILLS = '''
    import logging
    import os
    import re
    import threading

    from skills import SkillContext, skill

    @skill(timeout_s=0.5)
    def spin() -> str:
        """Backtrack in C for ever, holding the GIL (the probe's user skill)."""
        return str(re.match(r"(a+)+$", "a" * 40 + "b"))

    @skill
    def pid() -> int:
        """The process it runs in."""
        return os.getpid()

    @skill
    def crash() -> str:
        """End its own process."""
        os._exit(3)

    @skill
    def tell(context: SkillContext) -> str:
        """A message now and one from a thread after the reply."""
        context.notify(f"now from {os.getpid()}")
        threading.Timer(0.05, context.notify, ["later"]).start()
        return "told"

    @skill
    def surroundings(context: SkillContext) -> str:
        """What the caller's world looks like from here."""
        logging.getLogger(__name__).warning("looked around in %d", os.getpid())
        return f"{os.environ.get('SKILLCALL_TEST_PLACE')} {os.getcwd()} {context.settings.home_location}"

    COUNT = [0]

    @skill(in_process=True)
    def count() -> str:
        """State kept between calls, in the caller's process."""
        COUNT[0] += 1
        return f"{COUNT[0]} in {os.getpid()}"
'''


@pytest.fixture
def registry(tmp_path, settings, notified):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(SKILLS))
    loaded = load_registry(SkillContext(settings, notified.append), folder, builtins=False)
    assert not loaded.problems
    return loaded


def _pid(registry) -> int:
    result = registry.dispatch(SkillCall("pid"))
    assert result.ok, result.text
    return int(result.text)


def _gone(pid: int, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def test_a_skill_spinning_in_c_code_is_stopped_at_its_limit_and_the_next_call_is_served(registry):
    before = _pid(registry)
    assert before != os.getpid()
    start = time.monotonic()
    result = registry.dispatch(SkillCall("spin"))
    assert time.monotonic() - start < 3.0  # 0.5 s and a kill; a thread's join would never return
    assert result.outcome is Outcome.TIMED_OUT and not result.ok
    assert result.text == "spin did not finish within 0.5 s and was stopped"
    assert _gone(before)
    after = _pid(registry)  # a fresh worker, started when the other was killed
    assert after not in (before, os.getpid())


def test_a_worker_killed_from_outside_or_ended_by_its_skill_is_replaced(registry):
    first = _pid(registry)
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    second = _pid(registry)
    assert second != first
    result = registry.dispatch(SkillCall("crash"))
    assert result.outcome is Outcome.FAILED
    assert result.text == "crash failed: its worker process exited (the skill crashed or ended it)"
    assert _pid(registry) not in (first, second)


def test_notify_from_a_worker_reaches_the_caller_also_after_the_reply(registry, notified):
    assert registry.dispatch(SkillCall("tell")).text == "told"
    end = time.monotonic() + 2
    while len(notified) < 2 and time.monotonic() < end:
        time.sleep(0.01)
    assert notified == [f"now from {_pid(registry)}", "later"]


def test_an_in_process_skill_runs_here_and_keeps_its_state(registry):
    assert registry.get("count").in_process and not registry.get("pid").in_process
    assert registry.dispatch(SkillCall("count")).text == f"1 in {os.getpid()}"
    assert registry.dispatch(SkillCall("count")).text == f"2 in {os.getpid()}"


def test_the_worker_sees_the_callers_environment_folder_and_settings_and_logs_through_it(
        registry, tmp_path, monkeypatch, caplog):  # fmt: skip
    monkeypatch.setenv("SKILLCALL_TEST_PLACE", "here")
    monkeypatch.chdir(tmp_path)
    registry.context = SkillContext(registry.context.settings.model_copy(update={"home_location": "Lima"}))
    with caplog.at_level(logging.WARNING):
        result = registry.dispatch(SkillCall("surroundings"))
    assert result.text == f"here {tmp_path} Lima"
    worker_pid = _pid(registry)
    assert [r.getMessage() for r in caplog.records] == [f"looked around in {worker_pid}"]
    assert caplog.records[0].name.startswith("skillcall_user_probe") and caplog.records[0].funcName == "surroundings"
    monkeypatch.setenv("SKILLCALL_TEST_PLACE", "there")
    assert registry.dispatch(SkillCall("surroundings")).text.startswith("there ")


def test_an_edited_skill_file_is_loaded_afresh_by_the_next_registry(registry, tmp_path, settings):
    assert _pid(registry) > 0
    (tmp_path / "mine" / "probe.py").write_text(textwrap.dedent(SKILLS).replace("return os.getpid()", "return -1"))
    edited = load_registry(SkillContext(settings), tmp_path / "mine", builtins=False)
    assert edited.dispatch(SkillCall("pid")).text == "-1"
    assert _pid(registry) > 0  # the first registry's files, as it loaded them, in the same worker
