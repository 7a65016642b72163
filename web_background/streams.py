"""``sys.stdout`` and ``sys.stderr`` per thread, whatever replaces them.

print(), tracebacks and ``input()`` read ``sys.stdout`` from sys's dict (in C);
Python code reads it as an attribute.  Once ``install()`` has run, sys's dict
always holds one router per stream, and sys's class is a ``ModuleType``
subclass whose ``stdout``/``stderr`` attributes are per thread:

- an assignment (pytest's capture, ``capsys``, ``redirect_stdout``, doctest,
  ``unittest -b``, a server redirecting its log) sets the stream of threads
  outside jobs; made in a routed thread, it also becomes that thread's own
  stream until the thread puts back what it read.  The router stays in the dict.
- reading it gives, outside jobs, exactly the object last assigned (so
  ``sys.stdout is buf``, doctest's saved ``sys.stdout.write``, type checks hold);
  in a routed thread, the router.

The router is a ``threading.local``: a routed thread gives it its own
``write`` (a C-level ``functools.partial`` into its job's buffer, see
``capture.Sink``), so print() in a job costs what it did.  Other threads use
the class's methods, which go to the thread's own stream or the outside one.
This module knows nothing of jobs: ``capture`` says which threads are routed where.
"""

import io
import sys
import threading
import types
from typing import Any, Dict, List, Optional

NAMES = ("stdout", "stderr")
_ROUTED = ("write", "flush", "buffer", "isatty")  # what a routed thread sets on a router
_outside: Dict[str, Any] = {}  # the stream threads outside jobs write to, by name


class _ThreadState(threading.local):
    """The calling thread's: routed (by ``route``); ``own``: {name: stream it assigned while
    routed}; ``saved``: {name: (the outside stream, its route)} to put back.  Class
    defaults, so that reading them costs no AttributeError (this is on every print())."""

    routed = False
    apart = False  # a job's thread: a stream it assigns is its own alone (else also the outside one)
    own: Optional[Dict[str, Any]] = None
    inside: frozenset = frozenset()  # streams whose own stream is writing now (see _Router._through)
    held: Dict[str, Any] = {}  # what the thread reads as sys.stdout/stderr while routed (see _Held)


_thread = _ThreadState()
_owning = 0  # threads with a stream of their own now (0: no print() outside jobs needs to look)
_owning_lock = threading.Lock()


def _count_owning(change: int) -> None:
    global _owning
    with _owning_lock:
        _owning += change


class _Router(threading.local):
    """What sys's dict holds for one stream: per-thread ``write``, else the
    calling thread's own stream or the one outside jobs."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _target(self) -> Any:
        own = _thread.own
        if own and self._name in own:
            return own[self._name]
        return _outside[self._name]

    def write(self, s: str) -> int:  # threads without a route of their own
        if _owning:
            own = _thread.own
            if own and self._name in own:
                return self._through(own[self._name], "write", s)
        target = _outside[self._name]
        return len(s) if target is None else target.write(s)  # None (pythonw): print() writes nowhere

    def _through(self, stream: Any, method: str, *args: Any) -> Any:
        """Call the thread's own stream; what that stream writes to the router
        meanwhile (a wrapper of what it replaced: rich's Live, a tee) goes to what it
        replaced: the thread's route, or the stream it had before."""
        name, inside = self._name, _thread.inside
        if name in inside:
            outside, attrs = _thread.saved[name]
            if method in attrs and _thread.apart:
                return attrs[method](*args)
            if outside is None:
                return len(args[0]) if method == "write" else None
            return getattr(outside, method)(*args)
        _thread.inside = inside | {name}
        try:
            return getattr(stream, method)(*args)
        finally:
            _thread.inside = inside

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        own = _thread.own
        if own and self._name in own:
            self._through(own[self._name], "flush")
            return
        target = _outside[self._name]
        if target is not None:
            target.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, errors, isatty, fileno, buffer (unrouted), reconfigure, ... are the stream's own
        return getattr(self._target(), name)

    def __repr__(self) -> str:
        return "<web_background router of sys.%s>" % self._name


io.TextIOBase.register(_Router)


class _Held:
    """What a routed thread reads as ``sys.stdout`` (or stderr): it writes to the
    thread's route whatever is assigned later, as the object read before a swap
    would (rich's ``Console(file=sys.stdout)``, a wrapper of what it replaced)."""

    def __init__(self, name: str, attrs: Dict[str, Any]) -> None:
        self._name = name
        self.__dict__.update(attrs)  # write, buffer, flush, isatty: the route's

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        target = _outside.get(self._name)
        if target is not None:
            target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(_outside[self._name], name)

    def __repr__(self) -> str:
        return "<web_background route of sys.%s>" % self._name


io.TextIOBase.register(_Held)
_routers: Dict[str, _Router] = {name: _Router(name) for name in NAMES}


class _Attribute:
    """``sys.stdout`` or ``sys.stderr`` as Python code reads and assigns it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, module: Any, owner: Any = None) -> Any:
        if module is None:
            return self
        name, router = self.name, _routers[self.name]
        found = module.__dict__.get(name, router)
        if found is not router:  # assigned in sys's dict directly: an assignment all the same
            self.__set__(module, found)
        if name not in _outside:
            raise AttributeError("module 'sys' has no attribute %r" % name)
        if _thread.routed:
            own = _thread.own
            return own[name] if own and name in own else _thread.held.get(name, router)
        return _outside[name]

    def __set__(self, module: Any, value: Any) -> None:
        name, router = self.name, _routers[self.name]
        state = _thread.__dict__
        if state.get("routed"):
            own, saved = state.setdefault("own", {}), state.setdefault("saved", {})
            if value is router or value is state["held"].get(name):  # it puts back what it read: its route again
                if name in own:
                    del own[name]
                    _count_owning(-1)
                    outside, attrs = saved.pop(name)
                    if outside is not None and not state.get("apart"):
                        _outside[name] = outside
                    router.__dict__.update(attrs)
            else:
                if name not in own:
                    attrs = {a: router.__dict__.pop(a) for a in _ROUTED if a in router.__dict__}
                    saved[name] = (_outside.get(name), attrs)
                    _count_owning(+1)
                own[name] = value
                if not state.get("apart"):
                    _outside[name] = value
        elif value is not router:
            _outside[name] = value
        module.__dict__[name] = router

    def __delete__(self, module: Any) -> None:
        module.__dict__.pop(self.name, None)
        _outside.pop(self.name, None)


class _Sys(types.ModuleType):
    """sys's class once the capture is in place (see the module docstring)."""

    stdout = _Attribute("stdout")
    stderr = _Attribute("stderr")


def install() -> None:
    """Make sys's streams per thread (once; cheap to call again)."""
    if type(sys) is not _Sys:
        d = sys.__dict__
        for name in NAMES:
            if name in d and d[name] is not _routers[name]:
                _outside[name] = d[name]
                d[name] = _routers[name]
        sys.__class__ = _Sys


def route(attributes: Dict[str, Dict[str, Any]], apart: bool = False) -> None:
    """Route the calling thread: ``{name: {"write": ..., "buffer": ..., "flush": ...}}``
    become its own attributes of each stream's router.  ``apart``: a stream the
    thread assigns is its own alone (a job's), not also that of threads outside jobs."""
    unroute()
    _thread.routed = True
    _thread.apart = apart
    _thread.held = {name: _Held(name, attrs) for name, attrs in attributes.items()}
    for name, attrs in attributes.items():
        _routers[name].__dict__.update(attrs)


def unroute() -> None:
    """The calling thread writes where threads outside jobs write again."""
    for router in _routers.values():
        for a in _ROUTED:
            router.__dict__.pop(a, None)
    if _thread.own:
        _count_owning(-len(_thread.own))
    _thread.__dict__.clear()


def suspend() -> List[Dict[str, Any]]:
    """Let the calling thread write where it would without its route, until ``resume``."""
    return [{a: router.__dict__.pop(a) for a in _ROUTED if a in router.__dict__} for router in _routers.values()]


def resume(routed: List[Dict[str, Any]]) -> None:
    """Put back the route ``suspend`` set aside."""
    for router, attributes in zip(_routers.values(), routed):
        router.__dict__.update(attributes)


def outside(name: str) -> Any:
    """The stream threads outside jobs write to now (``sys.stdout`` as they read it)."""
    return _outside[name] if name in _outside else getattr(sys, name)


def write_outside(name: str, s: str) -> int:
    """Write ``s`` where threads outside jobs write ``name`` now."""
    return outside(name).write(s)


def router(name: str) -> Any:
    """The stream object that writes where the calling thread's writes go, whichever thread that is."""
    install()
    return _routers[name]
