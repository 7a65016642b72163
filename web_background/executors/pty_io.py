"""A real terminal for a process job that asks for one (``tty=True``).

The web process opens a pseudo-terminal of the job's ``tty_size`` and hands
its terminal end to the job's process in place of the output pipe, so that fds
1 and 2 are a terminal (``isatty()``, ``os.get_terminal_size()``); it reads the
other end as it reads a pipe.  In the job's process, ``child_environment``
then tells programs what a terminal tells them (``TERM``, ``COLUMNS``,
``LINES``) and that nobody will read a pager.  Nothing can wait on input:
stdin stays the fork server's ``/dev/null``, and the job has no controlling
terminal (its fork server runs in a session of its own), so ``/dev/tty``
cannot be opened and a prompt fails at once instead of hanging.
"""

import errno
import fcntl
import os
import struct
import termios
from typing import Sequence, Tuple

TERM = "xterm-256color"  # what the page's screen understands best of the common names


def open_pty(size: Sequence[int]) -> Tuple[int, int]:
    """``(reading end, terminal end)`` of a new pseudo-terminal of ``size`` (columns, rows)."""
    reader, terminal = os.openpty()
    columns, rows = size
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return reader, terminal


def read(fd: int) -> bytes:
    """What came out of a job's pipe or pseudo-terminal; b"" at its end (a
    pseudo-terminal says EIO once the job's side is closed, where a pipe says EOF)."""
    try:
        return os.read(fd, 1 << 16)
    except OSError as e:
        if e.errno == errno.EIO:
            return b""
        raise


def child_environment() -> None:
    """In a job's process, once fds 1 and 2 are in place: when they are a terminal,
    the environment programs read to use one (``TERM``, ``COLUMNS``, ``LINES``,
    ``PAGER=cat``)."""
    if not os.isatty(1):
        return
    size = os.get_terminal_size(1)
    os.environ.update(TERM=TERM, COLUMNS=str(size.columns), LINES=str(size.lines), PAGER="cat", GIT_PAGER="cat")
