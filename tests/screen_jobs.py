"""Programs that draw on a terminal (the producers of issue 20), as thread and
process jobs, and the page that starts one; imported by the tests, the test
apps' server (tests/apps.py) and the fork server.

Each producer writes to ``sys.stdout``/``sys.stderr`` what it would write to a
terminal. ``forced``: the libraries are told they write to a terminal (rich's
``force_terminal``) for jobs without a tty; without it they find out, as an
unchanged program does (``tty=True`` jobs, and the same program in a real pty).
"""
import os
import subprocess
import sys
import time

import web

from web_background import background, backgrounder
from web_background.terminal import HEIGHT


def _console(forced, width=80):
    from rich.console import Console

    if forced:
        return Console(file=sys.stdout, force_terminal=True, width=width, color_system="256")
    return Console(file=sys.stdout)


def tqdm_nested(forced=True):
    from tqdm import tqdm

    steady = "{l_bar}{bar}| {n_fmt}/{total_fmt}"  # no rates or times: the same text in every run
    for _ in tqdm(range(3), desc="outer", position=0, file=sys.stdout, ncols=70, mininterval=0, miniters=1,
                  bar_format=steady):
        for _ in tqdm(range(4), desc="inner", position=1, leave=False, file=sys.stdout, ncols=70, mininterval=0,
                      miniters=1, bar_format=steady):
            time.sleep(0.002)
    print("after the bars")


def rich_progress(forced=True):
    from rich.progress import Progress

    with Progress(console=_console(forced), auto_refresh=False) as progress:
        download = progress.add_task("download", total=5)
        unpack = progress.add_task("[red]unpack", total=5)
        for _ in range(5):
            progress.advance(download)
            progress.advance(unpack)
            progress.refresh()
    print("installed")


def rich_status(forced=True):
    console = _console(forced)
    with console.status("working") as status:
        for i in range(3):
            time.sleep(0.1)
            status.update("working %d" % i)
    console.print("[bold green]done[/] and [reverse]reversed[/] and [strike]struck[/]")


def click_bar(forced=True):
    import click

    with click.progressbar(range(20), label="copying", width=30, file=sys.stdout) as bar:
        for _ in bar:
            time.sleep(0.002)
    click.secho("copied", fg="green", bold=True)


def colorama_moves(forced=True):
    from colorama import Back, Cursor, Fore, Style, ansi

    print("first\nsecond\nthird")
    sys.stdout.write(Cursor.UP(2) + "\r" + ansi.clear_line() + Fore.YELLOW + "second, moved up" + Style.RESET_ALL)
    sys.stdout.write(Cursor.DOWN(2) + "\r" + Back.BLUE + "below" + Style.RESET_ALL + Cursor.POS(4, 1) + "!\n")
    print(Fore.RED + "red" + Style.RESET_ALL)


def pip_style(forced=True):
    for i in range(0, 101, 5):
        eta = "eta 0:00:%02d" % ((100 - i) // 10)
        sys.stdout.write("\r\x1b[2K   \x1b[38;5;197m%s\x1b[0m %3d/100 kB %s" % ("━" * (i // 5), i, eta))
        sys.stdout.flush()
    sys.stdout.write("\nSuccessfully installed thing-1.0\n")


def apt_style(forced=True, rows=HEIGHT):
    sys.stdout.write("\n\x1b7\x1b[0;%dr\x1b8\x1b[1A" % (rows - 1))  # apt's status row: a scroll region above it
    for i in range(12):
        sys.stdout.write("Unpacking package-%d (1.%d) ...\n" % (i, i))
        bar = "#" * i + "." * (12 - i)
        sys.stdout.write("\x1b7\x1b[%d;0f\x1b[42m\x1b[30mProgress: [%3d%%]\x1b[49m\x1b[39m [%s] \x1b8"
                         % (rows, i * 8, bar))
        sys.stdout.flush()
    sys.stdout.write("\x1b7\x1b[0;%dr\x1b8\x1b[%d;0f\x1b[J" % (rows, rows))  # the region ends; the status row goes


def csi_k(forced=True):
    for n in range(500, 3001, 500):
        sys.stdout.write("\rDone: %d files found so far" % n)
    sys.stdout.write("\r\x1b[KDone: 3000 files\n")
    sys.stdout.write("left part|right part\x1b[10G\x1b[1K\n")
    sys.stdout.write("to be erased\x1b[2K\rerased\n")


def docker_pull(forced=True):
    layers = ["a3ed95caeb02", "5f70bf18a086", "d3c894b5b2b0"]
    for layer in layers:
        sys.stdout.write("%s: Waiting\n" % layer)
    for step in ("Downloading", "Extracting", "Pull complete"):
        for i, layer in enumerate(layers):
            up = len(layers) - i
            sys.stdout.write("\x1b[%dA\x1b[2K\r%s: %s\x1b[%dB\r" % (up, layer, step, up))
            sys.stdout.flush()
    sys.stdout.write("\x1b7Status: Downloading newer image\x1b8\x1b[1GStatus: done\x1b[K\n")
    sys.stdout.write("\x1b[sDigest: sha256:0123\x1b[u\x1b[1C\x1b[1D\x1b[6C\x1b[1;32mOK\x1b[0m\n")


PRODUCERS = {f.__name__: f for f in (tqdm_nested, rich_progress, rich_status, click_bar, colorama_moves, pip_style,
                                     apt_style, csi_k, docker_pull)}
TTY_ONLY = {"click_bar"}  # click draws its bar only on a terminal: these run with tty=True


def produce(name, forced=True):
    """Run the producer ``name``; its output is the job's."""
    PRODUCERS[name](forced)


def _wait_for(gate):
    """Wait (20 s at most) until the file ``gate`` exists: a test opens it once the page shows the job."""
    if gate:
        print("waiting", flush=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)


@background
def in_thread(name, gate=None):
    _wait_for(gate)
    produce(name)


@background(executor="processes")
def in_process(name, gate=None):
    _wait_for(gate)
    produce(name)


@background(tty=True)
def in_thread_tty(name, gate=None):
    _wait_for(gate)
    produce(name)


@background(executor="processes", tty=True)
def in_process_tty(name, forced=True, gate=None):
    _wait_for(gate)
    produce(name, forced)


def start(name, executor, gate=None):
    """The producer's job on ``executor`` (``threads`` or ``processes``), with a tty if it needs one;
    it starts drawing once the file ``gate`` exists (if given)."""
    tty = name in TTY_ONLY
    if executor == "threads":
        return (in_thread_tty if tty else in_thread)(name, gate=gate)
    return (in_process_tty if tty else in_process)(name, gate=gate)


def run_in_pty(name, size, forced=False):
    """The bytes the producer writes when run as a program of its own in a real
    pseudo-terminal of ``size`` (columns, rows), decoded."""
    import pty
    import termios
    import fcntl
    import struct

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    code = "import sys; sys.path[:0] = %r; import screen_jobs; screen_jobs.produce(%r, %r)" % (
        [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))],
        name, forced)
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(size[0]), LINES=str(size[1]), PAGER="cat")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, env=env, start_new_session=True)
    os.close(follower)
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            more = os.read(leader, 1 << 16)
        except OSError:  # EIO: the program's side is closed
            break
        if not more:
            break
        data += more
    os.close(leader)
    proc.wait(10)
    return data.decode("utf-8", "replace")


class screen_page:
    """``/screen?name=tqdm_nested&executor=processes``: the producer's job page."""

    @backgrounder
    def GET(self):
        query = web.input(name="", executor="threads", gate="")
        if query.name not in PRODUCERS or query.executor not in ("threads", "processes"):
            raise web.notfound()
        start(query.name, query.executor, gate=gate_path(query.gate) if query.gate else None)


def gate_path(name):
    """The file that opens the gate ``name`` (letters and digits)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "wb-screen-gate-%s" % "".join(c for c in name if c.isalnum()))

