"""Skills in worker processes, so that a skill past its time limit is stopped whatever it is doing.

A thread cannot be stopped, and C code that holds the GIL (a regular expression that backtracks for hours) keeps
even a thread's join from timing out. So a skill loaded from a file runs in a worker process: a small warm pool,
each worker loading a registry's skill files once. At the time limit the worker is killed (SIGKILL) and another
takes its place; the caller gets one line and carries on. A skill declared ``@skill(in_process=True)`` (the timers,
whose countdowns live in the daemon) runs in the caller's process instead, in a thread.

Workers are forked from a *zygote*: a fresh interpreter started once (``python -c``) that imports the skills
package and what the built-in skills import, then forks a worker on request, in a few milliseconds. It has no threads, so forking it is safe (the daemon has many); a worker dies with it
(Linux: ``PR_SET_PDEATHSIG``) and it exits when the daemon does.

With each call a worker gets the call, the skill settings, and the caller's environment variables and working
directory (when changed since its last call) and log level; it sends back the reply, ``context.notify`` messages
(later ones too, from a thread the skill started) and log records at that level.

Where ``os.fork`` is missing (Windows), skills run in the caller's process: they are given up on at their limit,
not stopped.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SkillcallError, printable
from .registry import Outcome, Registry, SkillContext, run_skill

if TYPE_CHECKING:
    from .settings import SkillSettings

logger = logging.getLogger(__name__)

SUPPORTED = hasattr(os, "fork") and hasattr(socket, "send_fds")
POOL_SIZE = 1
"""Idle workers kept warm. The daemon runs one call at a time; a call made while all are busy starts another."""
LOAD_S = 60.0
"""How long a worker may take to start and load the skill files before its call; the skill's limit starts after."""
PRELOAD = ("skills.spoken", "skills.places", "httpx", "sqlite3", "ctypes")
"""What the zygote imports besides the skills package: what the built-in skills import (httpx alone is 0.2 s), so
that a new worker need not."""
_LOADED_KEYS = 8
"""Registries (sets of skill files) a worker keeps loaded; one per ``load_registry`` of the caller in practice."""

FileKey = tuple[tuple[str, str], ...]
"""The skill files a registry loaded, in order, each with a hash of its text: what a worker loads to serve it."""


# -- messages over a socket ------------------------------------------------------------------------------------
class _Channel:
    """Pickled messages over one end of a socket pair, each prefixed with its length. One thread receives; any
    thread may send."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: Any) -> bool:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self.sock.sendall(struct.pack("!Q", len(data)) + data)
        except OSError:  # the other side has gone (killed, or exited)
            return False
        return True

    def recv(self) -> Any:
        """The next message; ``EOFError`` when the other side has gone."""
        (size,) = struct.unpack("!Q", self._exactly(8))
        return pickle.loads(self._exactly(size))

    def _exactly(self, size: int) -> bytes:
        parts, left = [], size
        while left:
            part = self.sock.recv(min(left, 1 << 20))
            if not part:
                raise EOFError
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def shutdown(self) -> None:
        """Wake the receiving thread (it sees EOF) without closing a descriptor it may be reading."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# -- the worker's side -----------------------------------------------------------------------------------------
class _Forward(logging.Handler):
    """Sends the worker's log records to the caller, which logs them as its own."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel
        self.muted = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.muted:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            fields = {k: v for k, v in vars(record).items() if isinstance(v, (str, int, float, type(None)))}
            fields.update(msg=message, args=None, exc_info=None, exc_text=None,
                          processName=f"skill worker {os.getpid()}")  # fmt: skip
            self.channel.send(("log", fields))
        except Exception:  # a record that cannot be formatted is not worth a crash
            self.handleError(record)


def serve(channel: _Channel) -> None:
    """A worker's loop: load skill files, run calls, until the caller closes the socket (or kills it)."""
    forward = _Forward(channel)
    root = logging.getLogger()
    root.handlers[:] = [forward]
    registries: collections.OrderedDict[FileKey, Registry] = collections.OrderedDict()

    def registry_for(key: FileKey) -> Registry:
        found = registries.get(key)
        if found is None:
            found = Registry(isolate=False)
            forward.muted = True  # the caller loaded these files already and said what was wrong with them
            try:
                for path, _ in key:
                    found.load_file(Path(path))
            finally:
                forward.muted = False
            registries[key] = found
            if len(registries) > _LOADED_KEYS:
                registries.popitem(last=False)
        registries.move_to_end(key)
        return found

    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return
        if message[0] == "load":
            _, key, warm = message
            loaded = registry_for(key)
            if warm:
                threading.Thread(target=loaded.warm, name="warm-skills", daemon=True).start()
        elif message[0] == "call":
            _, call_id, key, settings, token, name, arguments, env, cwd, level = message
            root.setLevel(level)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            try:
                if cwd is not None:
                    os.chdir(cwd)
            except OSError:
                pass  # the caller's folder has gone: the skill runs where the worker is
            registry = registry_for(key)
            channel.send(("started", call_id))
            found = registry.skills.get(name)
            if found is None:  # the file changed since the caller loaded it
                outcome, text = Outcome.FAILED, f"{name} is not in its skill file any more; restart to reload it"
            else:
                kwargs = dict(arguments)
                if found.context_parameter:
                    notify = (lambda text, token=token: channel.send(("notify", token, str(text))))  # noqa: E731
                    kwargs[found.context_parameter] = SkillContext(settings, notify)
                outcome, text = run_skill(found, kwargs)
            channel.send(("done", call_id, outcome.value, text))


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when the zygote exits (the zygote exits when the daemon does), even
    while the worker spins in C code that no thread of its own could interrupt."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the zygote went before the line above took hold
        os._exit(0)


def zygote(control_fd: int) -> None:
    """The zygote's loop (``python -c``): one byte and a socket end in, a forked worker's pid out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it kills the workers
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    control = socket.socket(fileno=control_fd)
    me = os.getpid()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1, 1)
        except OSError:
            break
        if not data or not fds:
            break  # the caller has gone
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a skill's subprocess.run must see its child exit
                _die_with_parent(me)
                serve(_Channel(socket.socket(fileno=fds[0])))
            except BaseException:  # noqa: BLE001 - nothing to return to
                code = 1
            finally:
                os._exit(code)
        os.close(fds[0])
        try:
            control.sendall(struct.pack("!q", pid))
        except OSError:
            break
    os._exit(0)


# -- the caller's side -----------------------------------------------------------------------------------------
class WorkerStartError(SkillcallError):
    """The zygote could not be started or did not answer; a call then fails with this as its reason."""


class _Zygote:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def fork(self, end: socket.socket) -> int:
        """A new worker serving ``end``; its pid. The first call starts the zygote (about half a second)."""
        with self._lock:
            for attempt in range(2):
                if self._control is None:
                    self._start()
                try:
                    socket.send_fds(self._control, [b"w"], [end.fileno()])
                    answer = b""
                    while len(answer) < 8:
                        part = self._control.recv(8 - len(answer))
                        if not part:
                            raise OSError("the zygote exited")
                        answer += part
                    return struct.unpack("!q", answer)[0]
                except OSError as exc:
                    self.close()
                    if attempt:
                        raise WorkerStartError(f"could not start a skill worker ({exc})") from exc
            raise AssertionError("unreachable")

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        code = (f"import sys; sys.path[:0] = {[p for p in sys.path if p]!r}; "
                f"from skills.worker import zygote; zygote({theirs.fileno()})")  # fmt: skip
        try:
            self._process = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                             stdin=subprocess.DEVNULL)  # fmt: skip
        except OSError as exc:
            ours.close()
            raise WorkerStartError(f"could not start a skill worker ({exc})") from exc
        finally:
            theirs.close()
        ours.settimeout(LOAD_S)  # a zygote that never answers is an error, not a hang
        self._control = ours

    def close(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote sees EOF and exits; its workers die with it (Linux)
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


class _Worker:
    def __init__(self, pool: _Pool) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.pid = pool.zygote.fork(theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)  # a kill that cannot reach a reused pid
        except (AttributeError, OSError):
            self._pidfd = None
        self.channel = _Channel(ours)
        self.inbox: queue.Queue = queue.Queue()
        self.env: dict[str, str] | None = None
        self.loaded: set[FileKey] = set()
        self.gone = threading.Event()
        self._killed = False
        threading.Thread(target=self._read, args=(pool,), name=f"skill-worker-{self.pid}", daemon=True).start()

    def _read(self, pool: _Pool) -> None:
        try:
            while True:
                message = self.channel.recv()
                if message[0] == "notify":
                    pool.notify(message[1], message[2])
                elif message[0] == "log":
                    record = logging.makeLogRecord(message[1])
                    logging.getLogger(record.name).handle(record)
                else:
                    self.inbox.put(message)
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        finally:
            self.gone.set()
            self.inbox.put(("gone",))
            self.channel.sock.close()

    def wait(self, seconds: float) -> tuple | None:
        """The next answer (``("gone",)`` when the worker has exited), or None after ``seconds``."""
        try:
            return self.inbox.get(timeout=seconds)
        except queue.Empty:
            return None

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        if not self.gone.is_set():
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.channel.shutdown()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _Pool:
    def __init__(self) -> None:
        self.zygote = _Zygote()
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._warm: set[FileKey] = set()
        self._tokens: weakref.WeakKeyDictionary[Registry, int] = weakref.WeakKeyDictionary()
        self._registries: weakref.WeakValueDictionary[int, Registry] = weakref.WeakValueDictionary()
        self._next_token = itertools.count(1)
        self._calls = itertools.count(1)

    # -- workers ---------------------------------------------------------------------------------------------
    def _new(self, key: FileKey | None = None) -> _Worker:
        worker = _Worker(self)
        for wanted in self._warm | ({key} if key else set()):
            worker.channel.send(("load", wanted, wanted in self._warm))
            worker.loaded.add(wanted)
        return worker

    def take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if not worker.gone.is_set():
                    self._busy.add(worker)
                    return worker
                worker.kill()
            worker = self._new()
            self._busy.add(worker)
            return worker

    def give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not worker.gone.is_set() and len(self._idle) < POOL_SIZE:
                self._idle.append(worker)
                return
        worker.kill()

    def replace(self, worker: _Worker, key: FileKey) -> None:
        """Kill a worker and start another in its place, with the files it served loaded."""
        worker.kill()
        with self._lock:
            self._busy.discard(worker)
            if len(self._idle) < POOL_SIZE:
                try:
                    self._idle.append(self._new(key))
                except WorkerStartError as exc:
                    logger.warning("%s; the next call tries again", exc)

    def warm(self, key: FileKey) -> None:
        with self._lock:
            self._warm.add(key)
            while len(self._idle) < POOL_SIZE:
                self._idle.append(self._new())
            for worker in [*self._idle, *self._busy]:
                if key not in worker.loaded:
                    worker.channel.send(("load", key, True))
                    worker.loaded.add(key)

    def close(self) -> None:
        with self._lock:
            workers = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.kill()
        self.zygote.close()

    # -- notify ----------------------------------------------------------------------------------------------
    def token(self, registry: Registry) -> int:
        """What a worker tags a skill's messages with, to reach this registry's ``context.notify``."""
        with self._lock:
            token = self._tokens.get(registry)
            if token is None:
                token = self._tokens[registry] = next(self._next_token)
                self._registries[token] = registry
            return token

    def notify(self, token: int, text: str) -> None:
        registry = self._registries.get(token)
        if registry is None:
            logger.info("a skill's message for a registry that has gone: %s", printable(text))
            return
        try:
            registry.context.notify(text)
        except Exception:  # the caller's own code: one bad message must not stop the next
            logger.exception("context.notify failed")

    # -- a call ----------------------------------------------------------------------------------------------
    def run(self, registry: Registry, key: FileKey, name: str, arguments: dict[str, Any],
            limit: float) -> tuple[Outcome, str]:  # fmt: skip
        settings: SkillSettings = registry.context.settings
        token = self.token(registry)
        for attempt in range(2):  # a worker found dead before it began the call: once more, on a new one
            try:
                worker = self.take()
            except WorkerStartError as exc:
                return Outcome.FAILED, f"{name} could not run: {exc}"
            try:
                env = dict(os.environ)
                call_id = next(self._calls)
                level = logging.getLogger().getEffectiveLevel()
                worker.channel.send(("call", call_id, key, settings, token, name, arguments,
                                     None if env == worker.env else env, _cwd(), level))  # fmt: skip
                worker.env = env
                worker.loaded.add(key)
                answer = worker.wait(LOAD_S)
                if answer is None:
                    self.replace(worker, key)
                    return Outcome.FAILED, f"{name} could not run: its skill files took over {LOAD_S:g} s to load"
                if answer[0] == "gone":
                    self.replace(worker, key)
                    if attempt:
                        return Outcome.FAILED, f"{name} could not run: its worker process exited while loading"
                    continue
                answer = worker.wait(limit)
                if answer is None:
                    self.replace(worker, key)
                    logger.info("skill %s still running after %.3g s; its worker process was stopped", name, limit)
                    return Outcome.TIMED_OUT, f"{name} did not finish within {limit:g} s and was stopped"
                if answer[0] == "gone":
                    self.replace(worker, key)
                    return Outcome.FAILED, f"{name} failed: its worker process exited (the skill crashed or ended it)"
            except BaseException:  # Ctrl-C while it runs: it is stopped too
                self.replace(worker, key)
                raise
            self.give_back(worker)
            return Outcome(answer[2]), answer[3]
        raise AssertionError("unreachable")


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the caller's folder was deleted
        return None


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _the_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Pool()
            atexit.register(shutdown)
        return _pool


def shutdown() -> None:
    """Stop every worker and the zygote (at exit, or to start afresh); the next call starts them again."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def run(registry: Registry, key: FileKey, name: str, arguments: dict[str, Any], limit: float) -> tuple[Outcome, str]:
    """Run one validated call of a skill from the files ``key`` names, in a worker; stop it at ``limit`` s."""
    return _the_pool().run(registry, key, name, arguments, limit)


def warm(key: FileKey) -> None:
    """Start the warm pool now, each worker loading these files and running their skills' ``warm``."""
    try:
        _the_pool().warm(key)
    except WorkerStartError as exc:
        logger.warning("%s; skills start one at their first call", exc)
