"""Jobs in processes of their own: isolated from the web server.

Each job is a child of a fork server (``forkserver``): a clean,
single-threaded process started once, with the app's job modules imported, so
the multi-threaded server is never forked and a start costs one fork.  The job
runs at a lower CPU priority (``nice``), in its child's main thread, where a
stop is a signal (``Cancelled``/``TimedOut`` raised at once, even in a sleep);
past ``cancel_grace`` its process group is killed.  One thread here collects
every job's output pipe and control socket: output goes into the job's sink
(so every store works, the memory store too), progress and the end into the
runner; a crash ends the job ``failed`` with what killed it, output kept.
"""

import collections
import logging
import os
import selectors
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Tuple, Type

from ..capture import Cancelled
from ..stores import JobStatus
from . import STOP_SIGNALS, Executor, check_pickles, forkserver, function_ref, pty_io
from .channel import JobProcess, message as channel_message, result_of
from .child import FLUSH, frame
from .forkserver import fork_server, replace_fork_server

if TYPE_CHECKING:
    from ..running import Running

log = logging.getLogger("web_background")
DRAIN = 0.5  # seconds to wait for the last output after a job's process has exited
LAUNCH_TIMEOUT = 10.0  # seconds a job's process may take to start before the job fails and the fork server is replaced
PRELOAD_TIMEOUT = 300.0  # the same, while a new fork server still imports the app's modules
BIG_END = 1 << 20  # bytes of a job's end above which it is recorded by a thread of its own (not the collector)
IMPORTING_APP = (
    "a process job was started while web_background's fork server was importing the app's module: code at the "
    "top level of the app's script (or of a module defining jobs) starts jobs when it is imported. Start them "
    "only when the script is run, under 'if __name__ == \"__main__\":', or from a request handler.")


def _crash(code: Optional[int]) -> str:
    if code is None:
        return "the job's process ended without saying how (its fork server stopped)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "the job's process was killed by %s" % name
    return "the job's process exited with code %d" % code


class ProcessExecutor(Executor):
    """At most ``workers`` job processes at once, the rest queued (``queue_limit``)."""

    name = "processes"
    plain_context = True

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        settings = runner.settings
        self.workers, self.queue_limit, self.nice = settings["workers"], settings["queue_limit"], settings["nice"]
        self._lock = threading.Lock()
        self._waiting: Deque[Tuple["Running", bytes]] = collections.deque()
        self._procs: Dict[str, JobProcess] = {}
        self._launching = 0  # taken off the queue, not yet in _procs: they hold a slot too
        self._pid = 0
        self._closed = False
        self._selector: Optional[selectors.BaseSelector] = None
        self._wake: Tuple[int, int] = (-1, -1)
        self._drains: List[threading.Event] = []  # callers of drain(), waiting

    def prepare(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any],
                ctx: Optional[Dict[str, Any]], queue: Optional[str]) -> Any:
        if forkserver.importing_app:  # else each fork server would start another, without end
            raise RuntimeError(IMPORTING_APP)
        return check_pickles((function_ref(func, allow_main=True), args, kwargs, ctx), "in a process")

    def start(self, running: "Running", call: Any) -> bool:
        with self._lock:
            if self._closed:
                raise RuntimeError("this executor was closed")
            self._ensure_thread()
            if len(self._waiting) - (self.workers - self._busy()) >= self.queue_limit:
                return False
            self._waiting.append((running, call))
        self._poke()
        return True

    def _busy(self) -> int:
        """Slots taken (under ``_lock``): job processes, and jobs on their way to being one."""
        return len(self._procs) + self._launching

    def stop(self, running: "Running", reason: Type[Cancelled]) -> None:
        if not self._signal(running, STOP_SIGNALS[reason], group=False):
            # no process known yet (a stuck fork server): the job ends now; its process, if it ever starts, is killed
            self.runner.finish_stopped(running)

    def kill(self, running: "Running", record_end: Callable[[], None]) -> None:
        if not self._signal(running, signal.SIGKILL, group=True):  # else the collector records the stopped end
            record_end()

    def _signal(self, running: "Running", signum: int, group: bool) -> bool:
        """Send ``signum`` to the job's process; False when its pid is not known yet
        (it is killed when it is: a job stopped before it started must not run)."""
        with self._lock:
            proc = self._procs.get(running.id)
            if proc is None:
                return True  # on its way to a process: the collector sees ``stopping`` when its pid comes
            if proc.pid is None:
                proc.signal = signal.SIGKILL
                return False
            if proc.exit is not None:
                return True
            try:
                (os.killpg if group else os.kill)(proc.pid, signum)
            except OSError:  # it has just ended
                pass
            return True

    def drain(self, timeout: float) -> None:
        if self._pid != os.getpid():
            return
        drained = threading.Event()
        self._drains.append(drained)
        self._poke()
        drained.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._poke()

    # -- the collecting thread -------------------------------------------

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()  # first use, or a forked child: nothing of the parent's carries over
        self._procs, self._waiting, self._launching = {}, collections.deque(), 0
        self._selector = selectors.DefaultSelector()
        self._wake = os.pipe()
        os.set_blocking(self._wake[0], False)
        self._selector.register(self._wake[0], selectors.EVENT_READ, None)
        threading.Thread(target=self._collect, name="web_background-processes", daemon=True).start()

    def _poke(self) -> None:
        try:
            os.write(self._wake[1], b"x")
        except (OSError, ValueError):
            pass

    def _collect(self) -> None:
        selector = self._selector
        assert selector is not None
        while True:
            self._launch_waiting()
            with self._lock:
                if self._closed and not self._procs and not self._waiting:
                    break
            waiting = any(p.exited_at is not None or p.pid is None for p in self._procs.values())
            timeout = DRAIN / 5 if waiting else None
            for key, _ in selector.select(timeout):
                if key.data is None:
                    try:
                        while os.read(self._wake[0], 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    key.data()
            if self._drains:
                self._drain(selector)
            for proc in list(self._procs.values()):
                if proc.pid is None and self._launch_overdue(proc):
                    self._launch_failed(proc)
                else:
                    self._end_if_over(proc)
        selector.close()
        for fd in self._wake:
            os.close(fd)

    def _drain(self, selector: selectors.BaseSelector) -> None:
        """Read every job's output until none is waiting (their processes flush
        Python's buffers every ``child.FLUSH``: wait for that first)."""
        time.sleep(3 * FLUSH)
        for _ in range(1000):
            ready = [key for key, _ in selector.select(0) if key.data is not None]
            if not ready:
                break
            for key in ready:
                key.data()
        while self._drains:
            self._drains.pop().set()

    def _launch_waiting(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._busy() >= self.workers:
                    return
                running, call = self._waiting.popleft()
                self._launching += 1
            try:
                if self.runner.begin(running):
                    self._launch(running, call)
            except Exception as e:
                log.exception("job %s could not be started in a process", running.id)
                self.runner.finish(running, JobStatus.FAILED, None, "the job's process could not be started: %s" % e)
            finally:
                with self._lock:
                    self._launching -= 1

    def _launch(self, running: "Running", call: bytes) -> None:
        out_r, out_w = pty_io.open_pty(running.tty) if running.tty else os.pipe()  # the job's fds 1 and 2
        ctl, ctl_child = socket.socketpair()
        try:
            server = fork_server()
            try:
                server.fork(running.id, self.nice, [out_w, ctl_child.fileno()])
            except OSError:  # the fork server died or is stuck: start another, once
                replace_fork_server(server)
                server = fork_server()
                server.fork(running.id, self.nice, [out_w, ctl_child.fileno()])
        except BaseException:
            os.close(out_r)
            ctl.close()
            raise
        finally:
            os.close(out_w)
            ctl_child.close()
        proc = JobProcess(running, out_r, ctl, server)
        with self._lock:
            self._procs[running.id] = proc
        ctl.sendall(frame((call, running.timeout)))
        assert self._selector is not None
        self._selector.register(out_r, selectors.EVENT_READ, lambda: self._read_output(proc))
        self._selector.register(ctl, selectors.EVENT_READ, lambda: self._read_control(proc))

    def _read_output(self, proc: JobProcess) -> None:
        data = pty_io.read(proc.out)
        if data:
            text = proc.decoder.decode(data)
            if text:
                proc.write(text)
                limit = self.runner.store.max_output
                if proc.running.sink.size() > limit + max(limit // 2, 1 << 16):  # slack: cut once per half
                    self._cut(proc)
            return
        self._close_output(proc)

    def _cut(self, proc: JobProcess) -> None:
        """Keep only the newest ``max_output`` of the job's unflushed output (the
        store would cut the rest): memory stays bounded however fast it prints.
        This thread is the sink's only writer, so the kept part goes back in order."""
        kept = proc.running.sink.drain()
        over = len(kept) - self.runner.store.max_output
        if over > 0:
            proc.running.cuts.append(over)  # counted by the next flush, before what it drains
            kept = kept[over:]
        if kept:
            proc.write(kept)

    def _close_output(self, proc: JobProcess) -> None:
        if not proc.out_open:
            return
        proc.out_open = False
        assert self._selector is not None
        self._selector.unregister(proc.out)
        os.close(proc.out)
        tail = proc.decoder.decode(b"", final=True)
        if tail:
            proc.write(tail)

    def _read_control(self, proc: JobProcess) -> None:
        """Read the job's own channel: its pid, progress, end (and, from its fork
        server, its exit code); nothing else speaks for the job."""
        try:
            frames = proc.frames.read()
        except OSError:
            frames = None
        proc.last_ctl = time.monotonic()
        if frames is None:
            self._close_control(proc)
            if proc.exit is None and proc.exited_at is None:  # no exit code will come
                proc.exited_at = time.monotonic()
            return
        for data in frames:
            if proc.ending is not None:  # the frame after the end: its result's pickle
                proc.end, proc.end_size, proc.ending = (proc.ending[0], data, proc.ending[1]), len(data), None
                continue
            self._on_message(proc, channel_message(data))

    def _close_control(self, proc: JobProcess) -> None:
        if proc.ctl_open:
            proc.ctl_open = False
            assert self._selector is not None
            self._selector.unregister(proc.ctl)
            proc.ctl.close()

    def _on_message(self, proc: JobProcess, message: Tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "pid" and proc.pid is None:
            with self._lock:
                proc.pid = message[1]
                pending, proc.signal = proc.signal, None
            if pending is None and proc.running.stopping is not None:  # stopped while its process started
                pending = STOP_SIGNALS[proc.running.stopping]
            if pending is not None:
                self._signal(proc.running, pending, group=pending == signal.SIGKILL)
            self._watch_exit(proc)
        elif kind == "progress":
            proc.running.progress = message[1]
        elif kind == "end":
            proc.ending = message[1:]  # (status, error); its result comes next
        elif kind == "exit":
            proc.exit, proc.exited_at = message[1], time.monotonic()
        elif kind == "bad":
            log.error("job %s: an unreadable message on its control socket (%s)", proc.running.id, message[1])

    def _watch_exit(self, proc: JobProcess) -> None:
        """See the job's process exit through a pidfd: its fork server may be dead or stopped."""
        try:
            proc.pidfd = os.pidfd_open(proc.pid)  # type: ignore[attr-defined,arg-type]
        except AttributeError:  # not Linux 5.3+ / Python 3.9+: the channel's end says it instead
            return
        except OSError:  # it has exited already
            proc.exited_at = proc.exited_at or time.monotonic()
            return
        assert self._selector is not None
        self._selector.register(proc.pidfd, selectors.EVENT_READ, lambda: self._exited(proc))

    def _exited(self, proc: JobProcess) -> None:
        if proc.exited_at is None:
            proc.exited_at = time.monotonic()
        self._close_pidfd(proc)

    def _close_pidfd(self, proc: JobProcess) -> None:
        if proc.pidfd is not None:
            assert self._selector is not None
            self._selector.unregister(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None

    def _launch_overdue(self, proc: JobProcess) -> bool:
        """Whether the job's process is past ``LAUNCH_TIMEOUT`` (from when its fork
        server was ready: importing the app may take long) and still not started."""
        ready = proc.server.ready_since()
        if ready is None:
            return time.monotonic() - proc.launched >= PRELOAD_TIMEOUT
        return time.monotonic() - max(ready, proc.launched) >= LAUNCH_TIMEOUT

    def _launch_failed(self, proc: JobProcess) -> None:
        """The job's process did not start within ``LAUNCH_TIMEOUT``: the job fails
        and its fork server, stuck, is replaced (the jobs it started live on)."""
        log.error("job %s: its process did not start within %g s; the fork server (pid %d) is replaced",
                  proc.running.id, LAUNCH_TIMEOUT, proc.server.process.pid)
        replace_fork_server(proc.server)
        self._drop(proc)
        self.runner.finish(proc.running, JobStatus.FAILED, None, "the job's process did not start within %g s "
                           "(its fork server was stuck; a fresh one takes the next jobs)" % LAUNCH_TIMEOUT)

    def _drop(self, proc: JobProcess) -> None:
        """Forget a job's process: close its channel, output and pidfd; free its slot."""
        self._close_output(proc)
        self._close_control(proc)
        self._close_pidfd(proc)
        with self._lock:
            self._procs.pop(proc.running.id, None)

    def _end_if_over(self, proc: JobProcess) -> None:
        """Record the end of a job whose process has exited, once its output is
        read (or ``DRAIN`` seconds later: a child it left behind may hold the pipe)."""
        now = time.monotonic()
        if proc.exited_at is None or (proc.out_open and now - proc.exited_at < DRAIN):
            return
        said = proc.end is not None or proc.exit is not None or not proc.ctl_open
        if not said and now - max(proc.exited_at, proc.last_ctl if proc.frames.partial() else 0) < DRAIN:
            return  # its end or exit code may still be on the way (a fork server that is stopped never sends it)
        alive = proc.pidfd is not None  # its channel has ended, its exit not seen: it cannot be watched, so it goes
        self._drop(proc)
        running = proc.running
        if (running.stopping is not None or alive) and proc.pid is not None:
            try:  # what the stopped job started goes with it
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.end is not None and proc.end_size > BIG_END:  # unpickled and written off this thread
            threading.Thread(target=self._record_end, args=(proc,), name="web_background-end", daemon=True).start()
        else:
            self._record_end(proc)

    def _record_end(self, proc: JobProcess) -> None:
        running = proc.running
        if proc.end is not None and not (running.killed and proc.end[0] == JobStatus.DONE.value):
            status, payload, error = proc.end
            self.runner.finish(running, JobStatus(status), result_of(payload), error)
        elif running.stopping is not None:
            self.runner.finish_stopped(running)
        else:
            self.runner.finish(running, JobStatus.FAILED, None, _crash(proc.exit))


EXECUTOR = ProcessExecutor
