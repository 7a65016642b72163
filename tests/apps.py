"""A web.py application exercising the decorators; importable by tests and servers."""
import sys
import threading
import time

import web

from web_background import background, backgrounder, progress

from screen_jobs import screen_page  # noqa: F401  (a page of urls)

urls = (
    "/", "index",
    "/form", "form",
    "/two", "two",
    "/nojob", "nojob",
    "/ctx", "ctxjob",
    "/fail", "fail",
    "/progress", "withprogress",
    "/gated", "gated",
    "/plain", "plain",
    "/ticker", "ticker",
    "/slowticker", "slowticker",
    "/mine", "mine",
    "/hostile", "hostile",
    "/load", "load",
    "/open", "open_gate",
    "/bar", "bar",
    "/colours", "colours",
    "/evil", "evil",
    "/million", "million",
    "/screen", "screen_page",  # screen_jobs: programs that draw on a terminal
)

gate = threading.Event()  # released by tests that hold /gated jobs


class index:
    @backgrounder
    def GET(self):
        print("Started")
        print("hit f5 to refresh!")
        count()


@background
def count(n=3):
    for i in range(n):
        print("%d" % i)
    return n


class form:
    @backgrounder
    def POST(self):
        echo_input()


@background
def echo_input():
    print("name=%s" % web.input(name="?").name)


class two:
    @backgrounder
    def GET(self):
        print("handler")
        first = count(1)
        second = count(2)
        print("second=%s" % second.id)
        return first


class nojob:
    @backgrounder
    def GET(self):
        print("no job here")
        return "plain answer"


class ctxjob:
    @backgrounder
    def GET(self):
        show_ctx()


@background
def show_ctx():
    time.sleep(0)
    print("ip=%s path=%s query=%s method=%s" % (web.ctx.ip, web.ctx.path, web.ctx.query, web.ctx.method))
    print("q=%s" % web.input(q="").q)
    print("ua=%s" % web.ctx.env.get("HTTP_USER_AGENT"))


class fail:
    @backgrounder
    def GET(self):
        explode()


@background
def explode():
    print("about to fail")
    raise RuntimeError("secret detail")


class withprogress:
    @backgrounder
    def GET(self):
        report()


@background
def report():
    progress(1, 4, "one <of> four")
    gate.wait(10)


class gated:
    @backgrounder
    def GET(self):
        wait_gate()


@background
def wait_gate():
    print("waiting")
    gate.wait(10)


class plain:
    def GET(self):
        return "x" * 1024


class ticker:
    @backgrounder
    def GET(self):
        tick()


class slowticker:
    """Holds its server thread (or gunicorn worker) for a while before starting the job."""

    @backgrounder
    def GET(self):
        time.sleep(float(web.input(hold="1").hold))
        tick()


@background
def tick(lines=400, delay=0.05):
    for i in range(lines):
        progress(i, lines, "tick %d of %d" % (i + 1, lines))
        print("tick %d" % i)
        time.sleep(delay)
    progress(lines, lines, "all ticks done")


class mine:
    """Jobs bound to the requester: the "user" cookie stands in for a session."""

    @backgrounder(owner=lambda: web.cookies().get("user"))
    def GET(self):
        i = web.input(lines="400", delay="0.05")
        tick(int(i.lines), float(i.delay))


class load:
    @backgrounder
    def GET(self):
        i = web.input(tag="", lines="50", delay="0.001")
        tagged(i.tag, min(int(i.lines), 10000), min(float(i.delay), 1.0))


@background
def tagged(tag, lines, delay):
    """Numbered lines carrying the client's tag: a reader can check every line
    arrives exactly once, in order, and that no other job's line is mixed in."""
    for i in range(lines):
        print("%s %05d" % (tag, i))
        if delay:
            time.sleep(delay)
    return lines


class hostile:
    @backgrounder
    def GET(self):
        print_hostile()


@background
def print_hostile():
    print("<script>window.pwned = 1</script></pre><img src=x onerror=\"window.pwned=2\">'\"&amp;")
    print("\x1b[31mred\x1b[0m \x1b]8;;javascript:window.pwned=3\x07link\x1b]8;;\x07 done")


# -- terminal output, held on a named gate that a test opens with GET /open?name=... --------

_named_gates = {}
_named_gates_lock = threading.Lock()


def named_gate(name):
    with _named_gates_lock:
        return _named_gates.setdefault(name, threading.Event())


class open_gate:
    def GET(self):
        named_gate(web.input(name="").name).set()
        return "opened"


def _gate_name():
    return web.input(gate="").gate


def _write(text, pause=0.0):
    """Write and hand it to the store at once; a pause long enough for the live
    view to receive it as an event of its own (a stream polls every 0.1 s)."""
    sys.stdout.write(text)
    sys.stdout.flush()
    if pause:
        time.sleep(pause)


class bar:
    @backgrounder
    def GET(self):
        progress_bar(_gate_name())


@background
def progress_bar(gate_name):
    """A tqdm-like bar: one line redrawn after "\r"; one redraw's "\r" ends a write of its own."""
    print("bar:", flush=True)
    named_gate(gate_name).wait(20)
    for i in range(11):
        _write("\r%4d%%|%-10s|" % (i * 10, "#" * i), 0.05)
    _write("\r", 0.3)
    _write("%4d%%|%-10s| finished" % (100, "#" * 10), 0.3)
    print()
    print("after the bar")


class colours:
    @backgrounder
    def GET(self):
        coloured(_gate_name())


@background
def coloured(gate_name):
    """Coloured text, with an SGR escape split between two writes."""
    print("waiting", flush=True)
    named_gate(gate_name).wait(20)
    _write("plain \x1b[3", 0.3)
    _write("1mred\x1b[0m plain\n", 0.1)
    _write("\x1b[1;4;38;5;21mbold underlined blue\x1b[0m \x1b[48;2;0;160;0mon green\x1b[0m\n")


class evil:
    @backgrounder
    def GET(self):
        print_evil(_gate_name())


@background
def print_evil(gate_name):
    """Markup and a hyperlink escape, live: an OSC 8 link split between two writes."""
    print("waiting", flush=True)
    named_gate(gate_name).wait(20)
    _write("<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\">\n", 0.1)
    _write("\x1b]8;;http://evil/\x1b", 0.3)
    _write("\\click\x1b]8;;\x1b\\ <a href=\"http://evil/\">a</a>\x1b]0;title\x07 end\n")


class million:
    @backgrounder
    def GET(self):
        million_characters(_gate_name())


@background
def million_characters(gate_name, lines=20000, batches=40, pause=0.05):
    """1,000,000 characters: 20,000 lines of 50, escapes included (every tenth line is red), in 40 writes."""
    named_gate(gate_name).wait(20)
    per_batch = lines // batches
    for b in range(batches):
        chunk = []
        for i in range(b * per_batch, (b + 1) * per_batch):
            if i % 10:
                chunk.append("line %05d %s\n" % (i, "x" * 38))
            else:
                chunk.append("\x1b[31mline %05d %s\x1b[0m\n" % (i, "x" * 29))
        _write("".join(chunk), pause)


app = web.application(urls, globals())
application = app.wsgifunc()


def buffering(wsgi):
    """Hold a whole event stream and send it at its end, as nginx's fastcgi_pass
    or lighttpd's default buffering does (WB_BUFFER_EVENTS=1)."""
    def app(environ, start_response):
        if "_format=events" not in environ.get("QUERY_STRING", ""):
            return wsgi(environ, start_response)
        got = []
        body = b"".join(wsgi(environ, lambda status, headers, exc_info=None: got.append((status, headers))))
        start_response(*got[0])
        return [body]
    return app


if __name__ == "__main__":
    import os

    app.run(*([buffering] if os.environ.get("WB_BUFFER_EVENTS") else []))
