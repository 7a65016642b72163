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


app = web.application(urls, globals())
