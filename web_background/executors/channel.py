"""The web process's end of one job's process (``JobProcess``) and of its control
socket: the frames its process sends (``child.frame``: a 4-byte length, then a pickle), read in time linear in
their size, one bounded read per call, so that a big result never stalls the
thread that also reads every other job's output."""

import codecs
import pickle
import socket
import time
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from .child import FRAME

if TYPE_CHECKING:
    from ..running import Running
    from .forkserver import ForkServer

CHUNK = 1 << 16  # bytes read at once for small frames
BIG_CHUNK = 1 << 22  # bytes read at once into a big frame's own buffer


class Frames:
    """Frames from one socket: ``read()`` once per readiness, ``None`` at its end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._head = bytearray()  # small frames and the start of the next one
        self._body: Optional[bytearray] = None  # a big frame, read straight into its own buffer
        self._got = 0

    def read(self) -> Optional[List[bytes]]:
        """The frames completed by one read (maybe none); None when the socket has ended."""
        if self._body is not None:
            view = memoryview(self._body)[self._got:]
            n = self.sock.recv_into(view, min(len(view), BIG_CHUNK))
            view.release()
            if not n:
                return None
            self._got += n
            if self._got < len(self._body):
                return []
            body, self._body = self._body, None
            return [body]  # type: ignore[list-item]  (a bytearray: pickle reads it as it is)
        data = self.sock.recv(CHUNK)
        if not data:
            return None
        self._head += data
        frames: List[bytes] = []
        while len(self._head) >= FRAME:
            size = int.from_bytes(self._head[:FRAME], "big")
            if len(self._head) >= FRAME + size:
                frames.append(bytes(self._head[FRAME:FRAME + size]))
                del self._head[:FRAME + size]
            else:  # the rest of a frame is still coming: give a big one a buffer of its own
                if size > CHUNK:
                    self._body = bytearray(size)
                    self._got = len(self._head) - FRAME
                    self._body[:self._got] = self._head[FRAME:]
                    self._head = bytearray()
                break
        return frames

    def partial(self) -> bool:
        """Whether a frame is half read (its rest should be on its way)."""
        return self._body is not None or bool(self._head)


def message(data: bytes) -> Any:
    """One frame's message (a tuple); ``("bad", error)`` for bytes that do not unpickle."""
    try:
        return pickle.loads(data)
    except Exception as e:
        return ("bad", "%s: %s" % (type(e).__name__, e))


def result_of(payload: bytes) -> Any:
    """The result a job's end carried; a placeholder saying why when it does not unpickle here."""
    try:
        return pickle.loads(payload)
    except Exception as e:
        return "<a result that could not be unpickled in the web process: %s: %s>" % (type(e).__name__, e)


class JobProcess:
    """One job's process, as the web process's collecting thread sees it: its channel,
    its output pipe, its pidfd, what it said."""

    def __init__(self, running: "Running", out: int, ctl: socket.socket, server: "ForkServer") -> None:
        self.running, self.out, self.ctl, self.server = running, out, ctl, server
        self.write = running.sink.writer(cancellable=False)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pid: Optional[int] = None
        self.pidfd: Optional[int] = None  # readable once the process has exited, whatever its fork server does
        self.signal: Optional[int] = None  # a signal asked for before the pid was known
        self.frames = Frames(ctl)
        self.launched = self.last_ctl = time.monotonic()
        self.ending: Optional[Tuple[str, Optional[str]]] = None  # the end's status and error, before its result
        self.end: Optional[Tuple[str, bytes, Optional[str]]] = None  # (status, the result's pickle, error)
        self.end_size = 0
        self.exit: Optional[int] = None
        self.exited_at: Optional[float] = None
        self.out_open = self.ctl_open = True
