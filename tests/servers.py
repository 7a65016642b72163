"""Real servers on 127.0.0.1 for end-to-end tests: start, wait until they answer, stop."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess; ``url`` is its base address once ``start()`` returns."""

    def __init__(self, argv, port, env=None, cwd=ROOT):
        self.argv, self.port, self.cwd = argv, port, cwd
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.url = "http://127.0.0.1:%d" % port
        self.proc = None
        self.log = None

    def start(self, timeout=20.0):
        self.log = open(os.path.join(ROOT, ".server-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                self.stop()
                raise RuntimeError("server exited early:\n" + output)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        output = self.output()
        self.stop()
        raise RuntimeError("server did not answer within %ss:\n%s" % (timeout, output))

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.log is not None:
            self.log.close()
            os.unlink(self.log.name)
            self.log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def get(url, headers=None, timeout=10.0):
    """(status, headers, body bytes) of a GET, redirects not followed; a
    ``Location`` is made absolute against ``url``, as a browser reads it."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, _absolute(url, response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, _absolute(url, e.headers), e.read()


def _absolute(url, headers):
    if headers is not None and headers.get("Location"):
        headers.replace_header("Location", urllib.parse.urljoin(url, headers["Location"]))
    return headers


def next_event(response):
    """(id, event, data) of the next Server-Sent Event on an HTTP response, or None at its end."""
    fields = {}
    while True:
        line = response.readline()
        if not line:
            return None
        line = line.decode().rstrip("\n")
        if not line:
            if "event" in fields:
                return fields.get("id"), fields["event"], fields.get("data")
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        fields[key] = value


def webpy_example(port, **env):
    """The README's example app under web.py's own server."""
    return Server([sys.executable, "examples/application.py", "127.0.0.1:%d" % port], port, env=env)


class RedisServer(Server):
    """A throw-away redis-server on 127.0.0.1 (no persistence)."""

    def __init__(self, port, workdir):
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (Debian: apt-get install redis-server)")
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(workdir)]
        super().__init__(argv, port)
        self.url = "redis://127.0.0.1:%d/0" % port


def apps_server(port, **env):
    """tests/apps.py under web.py's own server (cheroot, a fixed pool of threads)."""
    return Server([sys.executable, "tests/apps.py", "127.0.0.1:%d" % port], port, env=dict(env, PYTHONPATH=ROOT))

