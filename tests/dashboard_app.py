"""A web.py application mounting the jobs dashboard, with jobs to show on it;
imported by tests/test_dashboard.py, served by tests/test_dashboard_browser.py.

- ``/jobs``: ``dashboard()``, local clients only;
- ``/admin``: ``dashboard(allow=...)``, for the cookie ``role=admin``;
- ``/mine``: ``dashboard(owner=...)``, the jobs of the user (cookie ``user`` or header ``X-User``);
- ``/both``: ``dashboard(allow=..., owner=...)``;
- ``GET /start?kind=waiter|fails|hostile|quick&gate=NAME&text=...`` starts a job (303 to it);
  ``GET /mystart?gate=NAME`` starts a waiter bound to the user; ``GET /open?name=NAME`` opens a gate.
"""
import threading
import time

import web

from web_background import background, backgrounder, dashboard, progress

HOSTILE = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">'\"&amp;"


def is_admin():
    return web.cookies().get("role") == "admin"


def user():
    return web.ctx.env.get("HTTP_X_USER") or web.cookies().get("user")


urls = (
    "/jobs", dashboard(),
    "/admin", dashboard(allow=is_admin),
    "/mine", dashboard(owner=user),
    "/both", dashboard(allow=is_admin, owner=user),
    "/start", "start",
    "/mystart", "mystart",
    "/open", "open_gate",
)

_gates = {}
_gates_lock = threading.Lock()
_all_open = threading.Event()  # set: every gate is open, those named later too


def named_gate(name):
    with _gates_lock:
        gate = _gates.setdefault(name, threading.Event())
        if _all_open.is_set():
            gate.set()
        return gate


def open_all_gates():
    """Let every job waiting on a gate, or yet to wait on one, go on."""
    with _gates_lock:
        _all_open.set()
        for gate in _gates.values():
            gate.set()


def close_all_gates():
    """From now on every gate is a new, closed one."""
    with _gates_lock:
        _all_open.clear()
        _gates.clear()


@background
def waiter(gate_name):
    """Prints, reports progress, waits on its gate, then ends done."""
    print("waiting on %s" % gate_name, flush=True)
    progress(1, 3, "step 1 of 3")
    gate, deadline = named_gate(gate_name), time.monotonic() + 60
    while not gate.wait(0.02) and time.monotonic() < deadline:  # short waits: a cancel lands at once
        pass
    progress(3, 3, "all done")
    print("opened %s" % gate_name)


@background
def fails(tag):
    print("about to fail %s" % tag)
    raise RuntimeError("failed on purpose")


@background
def quick(n):
    print("quick %s" % n)
    return n


def _hostile(text):
    print("the output: " + text)
    progress(1, 2, "the message: " + text)


_hostile.__qualname__ = _hostile.__name__ = "hostile" + HOSTILE  # the job's name, as the dashboard shows it
hostile = background(_hostile)

KINDS = {"waiter": lambda i: waiter(i.gate), "fails": lambda i: fails(i.gate), "quick": lambda i: quick(i.gate),
         "hostile": lambda i: hostile(i.text or HOSTILE)}


class start:
    @backgrounder
    def GET(self):
        i = web.input(kind="quick", gate="", text="")
        KINDS[i.kind](i)


class mystart:
    @backgrounder(owner=user)
    def GET(self):
        i = web.input(kind="waiter", gate="", text="")
        KINDS[i.kind](i)


class open_gate:
    def GET(self):
        named_gate(web.input(name="").name).set()
        return "opened"


app = web.application(urls, globals())


if __name__ == "__main__":
    app.run()
