"""A web.py application exercising the decorators; importable by tests and servers."""
import threading
import time

import web

from web_background import background, backgrounder, progress

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


app = web.application(urls, globals())
application = app.wsgifunc()


if __name__ == "__main__":
    app.run()
