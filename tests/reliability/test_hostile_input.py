"""Hostile input through ``app.request``: property-based tests of every query
parameter and header the job answers read (``_t``, ``_offset``, ``_format``,
``_action``, ``Accept``, ``Last-Event-ID``) and of raw query strings with odd
percent-encoding.

Whatever the request, the answer is never a 5xx, never a traceback, an error
body is short, and a body holds a job's output only when that job's exact id
was asked for.  Two finished jobs, A and B, print unique markers; a third, C,
runs (held on a gate) while cancel POSTs are thrown at the others.
"""
import json
import secrets
import string
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, Phase, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from web_background import background
from web_background.jobs import get_runner

import apps
from conftest import wait_for

app = apps.app

FORMATS = ("html", "text", "json", "stream", "events")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "stream": "text/plain; charset=utf-8",
    "events": "text/event-stream; charset=utf-8",
}
ID_CHARS = string.ascii_letters + string.digits + "-_"
MAX_OFFSET_DIGITS = 18  # the bound of _offset / Last-Event-ID ("9" * 30 is a 400 in test_web)
ERROR_BODY_LIMIT = 200


def examples(n):
    """Hypothesis settings for these properties: n examples, reproducible, no deadline."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no slow "explain" of failures
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# -- the jobs ------------------------------------------------------------------------


@background
def say(marker, lines=6):
    print(marker)
    for i in range(lines):
        print("line %d of %s" % (i, marker))


@background
def hold(marker, gate):
    print(marker, flush=True)
    gate.wait(60)


class Jobs:
    """The jobs of one test: id -> marker, id -> output."""

    def __init__(self):
        self.markers, self.outputs = {}, {}

    def add(self, job, marker):
        self.markers[job.id] = marker
        self.outputs[job.id] = job.output

    @property
    def ids(self):
        return list(self.markers)


@pytest.fixture
def jobs(store_kind):
    """Two finished jobs, A and B, each with its own marker in its output."""
    token = secrets.token_hex(8)
    found = Jobs()
    for name in ("A", "B"):
        marker = "MARKER-%s-%s" % (name, token)
        job = say(marker)
        assert job.wait(10) and job.status == "done"
        found.add(job, marker)
    return found


@pytest.fixture
def running(jobs, gate):
    """Job C, running (held on the gate) until the end of the test, beside A and B."""
    marker = "MARKER-C-%s" % secrets.token_hex(8)
    job = hold(marker, gate)
    wait_for(lambda: job.status == "running" and marker in job.output)
    jobs.markers[job.id] = marker
    return job


# -- what every answer must be ------------------------------------------------------


def call(jobs, path, method="GET", headers=None):
    """One in-process request (from a page of the site: app.request's own Origin, which
    a cancel needs); checks what holds for every answer, whatever was asked."""
    try:
        response = app.request(path, method=method, headers=dict({"Origin": "http://0.0.0.0:8080"}, **(headers or {})))
    except Exception as e:  # web.py let it escape (a stream's body raised): a crash on the server
        raise AssertionError("%s %.300r %r raised %r" % (method, path, headers, e)) from e
    code = int(response.status.split()[0])
    body = response.data
    where = "%s %.300r %.200r -> %s %.300r" % (method, path, headers, response.status, body)
    if currently_in_test_context():  # pytest --hypothesis-show-statistics shows what was answered
        event("%s %s" % (method, response.status))
    assert code < 500, where
    assert b"Traceback" not in body and b'File "' not in body, where
    if code >= 400:
        assert len(body) < ERROR_BODY_LIMIT, where
    # never another job's output: a marker only ever comes back for its own exact id
    asked = first(parse_qs(urlsplit(path).query, keep_blank_values=True), "_t")
    for job_id, marker in jobs.markers.items():
        if marker.encode() in body:
            assert code == 200 and asked == job_id, "%s leaked job %s's output" % (where, job_id)
    return code, response


def first(query, name):
    return query.get(name, [None])[0]


def is_offset(raw):
    return raw.isascii() and raw.isdigit() and 1 <= len(raw) <= MAX_OFFSET_DIGITS


def expected_status(method, query, headers, known):
    """What the README promises for a request to a @backgrounder class with a
    GET handler and no POST of its own (``/`` of tests/apps.py)."""
    headers = headers or {}
    if method == "POST":
        if "_t" in query and query.get("_action") == ["cancel"]:
            if first(query, "_t") not in known:
                return 404
            accept = headers.get("Accept", "").lower()
            return 200 if accept == "application/json" or first(query, "_format") == "json" else 303
        return 405
    assert "_t" in query, "a GET without _t would start a job"
    fmt = first(query, "_format")
    if fmt is None:
        accept = headers.get("Accept")
        fmt = "events" if accept == "text/event-stream" else "json" if accept == "application/json" else "html"
    if fmt not in FORMATS:
        return 400
    raw = headers["Last-Event-ID"] if fmt == "events" and "Last-Event-ID" in headers else first(query, "_offset")
    if raw is not None and not is_offset(raw):
        return 400
    return 200 if first(query, "_t") in known else 404


def events_of(body):
    out = []
    for block in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


def check_output(response, fmt, job_id, output):
    """A 200 for a finished job: exactly ``output`` (from the asked offset on), in ``fmt``."""
    assert response.headers["Content-Type"] == CONTENT_TYPES[fmt]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.data
    if fmt in ("text", "stream"):
        assert body.decode() == output
    elif fmt == "json":
        data = json.loads(body)
        assert data["id"] == job_id and data["output"] == output and data["status"] == "done"
    elif fmt == "events":
        events = events_of(body)
        assert "".join(d["text"] for _, kind, d in events if kind == "output") == output
        assert events[-1][1] == "end" and events[-1][2]["id"] == job_id
    else:
        assert job_id.encode() in body  # the page shows the whole output whatever _offset says


# -- generated input -------------------------------------------------------------------

LATIN1 = st.characters(max_codepoint=0xFF)
# what app.request (urlparse) would cut or drop from a raw URL: a fragment and tabs/newlines
RAW_CHARS = st.characters(max_codepoint=0xFF, exclude_characters="#\t\r\n")
ODD_ESCAPES = ["%", "%%", "%f", "%ff", "%FF", "%00", "%zz", "%g1", "%2", "%C3", "%C3%28", "%ED%A0%80",
               "%F4%90%80%80", "%EF%BF%BF", "%C0%AF", "%E2%80%AE", "%0A", "%0D%0A", "%23", "%26", "%3D",
               "%25", "%2B", "+", "=", "==", "&", ";", "?", "%5Ft", "%5F%74"]
ODD_OFFSETS = ["", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "NaN", "inf", "\u0661", "\u00b2", "\uff11",
               "1\n", "\n1", "\x00", "1\x00", "9" * (MAX_OFFSET_DIGITS + 1), "0" * (MAX_OFFSET_DIGITS + 1),
               "1_000", "１２", "0" * MAX_OFFSET_DIGITS, "9" * MAX_OFFSET_DIGITS, "100000000000000"]


def offsets(length):
    """_offset / Last-Event-ID values: digits within the bound (in and past the output), and anything else."""
    return st.one_of(
        st.integers(0, length + 3).map(str),
        st.integers(0, 10 ** MAX_OFFSET_DIGITS - 1).map(str),
        st.integers(1, MAX_OFFSET_DIGITS).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
        st.text("0123456789", min_size=MAX_OFFSET_DIGITS + 1, max_size=60),
        st.sampled_from(ODD_OFFSETS),
        st.text(min_size=0, max_size=20),
        st.builds(lambda d, junk: d + junk, st.integers(0, 99).map(str), st.text(LATIN1, min_size=1, max_size=3)),
    )


@st.composite
def mutated(draw, ids):
    """A real id changed a little: one character replaced, cut, extended, case-flipped, ..."""
    base = draw(st.sampled_from(sorted(ids)))
    kind = draw(st.sampled_from(["replace", "truncate", "extend", "flip", "swapcase", "insert", "delete",
                                 "pad", "odd"]))
    i = draw(st.integers(0, len(base) - 1))
    other = draw(st.one_of(st.sampled_from(ID_CHARS), LATIN1))
    if kind == "replace":
        new = base[:i] + other + base[i + 1:]
    elif kind == "truncate":
        new = base[:i]
    elif kind == "extend":
        new = base + draw(st.text(st.one_of(st.sampled_from(ID_CHARS), LATIN1), min_size=1, max_size=50))
    elif kind == "flip":
        letters = [j for j, c in enumerate(base) if c.isalpha()]
        j = letters[i % len(letters)]
        new = base[:j] + base[j].swapcase() + base[j + 1:]
    elif kind == "swapcase":
        new = base.swapcase()
    elif kind == "insert":
        new = base[:i] + other + base[i:]
    elif kind == "delete":
        new = base[:i] + base[i + 1:]
    elif kind == "pad":
        new = draw(st.sampled_from([" ", "\x00", "\n", "/", ".", "%"])) + base
    else:  # the id and something a lax parser might drop
        new = base + draw(st.sampled_from(["\x00", "\n", " ", "\t", "/", "?", "#", "&_t=x", "\ufffd", "..", ";"]))
    assume(new not in ids)
    return new


def hostile_values(ids):
    """Values for any parameter of a raw query string, still percent-encoded as sent."""
    return st.one_of(
        st.sampled_from(sorted(ids)),
        st.sampled_from(sorted(ids)).map(lambda i: "".join("%%%02X" % ord(c) for c in i)),  # all escaped
        mutated(ids).map(lambda m: quote(m, safe="")),
        st.sampled_from(FORMATS + ("JSON", "Text", "event", "html ", "xml", "")),
        st.integers(0, 10 ** 20).map(str),
        st.text(RAW_CHARS, max_size=30),
        st.lists(st.sampled_from(ODD_ESCAPES), min_size=1, max_size=6).map("".join),
        st.builds(lambda s, n: s * n, st.sampled_from(["9", "a", "%ff", "%00", "A", "_t=", "&"]),
                  st.integers(1000, 50000)),
    )


@st.composite
def raw_queries(draw, ids):
    """A raw query string: key=value fragments with odd keys, odd escapes and repeats,
    always with at least one parameter that decodes to ``_t``."""
    keys = st.one_of(st.sampled_from(["_t", "_t", "_format", "_offset", "_action", "%5Ft", "_T", "_t%00", "t",
                                      "_t[]", "", "a", "_format%00", "%5Foffset", "_act%69on"]),
                     st.text(RAW_CHARS, max_size=8))
    fragment = st.one_of(
        st.builds(lambda k, v: "%s=%s" % (k, v), keys, hostile_values(ids)),
        st.sampled_from(["_action=cancel", "_action=CANCEL", "_action=cancel%00", "_format=json", "_format=events",
                         "_format=stream", "_offset=0", "_offset=3"]),
        st.sampled_from(ODD_ESCAPES),
        st.text(RAW_CHARS, max_size=12),
    )
    parts = draw(st.lists(fragment, max_size=8))
    must = "%s=%s" % (draw(st.sampled_from(["_t", "%5Ft", "%5F%74", "_%74"])), draw(hostile_values(ids)))
    parts.insert(draw(st.integers(0, len(parts))), must)
    return "&".join(parts)


def accept_headers():
    media = st.sampled_from(["text/event-stream", "application/json", "text/html", "text/plain", "*/*",
                             "application/*", "TEXT/EVENT-STREAM", "Application/JSON", "text/event-stream ",
                             "application/json;q=0", "application/json; charset=utf-8", "text/html;q=0.1",
                             "", ";", ",", "application/jsonx", "event-stream", "json"])
    return st.one_of(
        st.lists(media, min_size=1, max_size=5).map(", ".join),
        st.lists(media, min_size=1, max_size=5).map(",".join),
        st.text(LATIN1, max_size=40),
        st.text(max_size=40),
        st.builds(lambda m, n: ",".join([m] * n), media, st.integers(100, 5000)),
    )


# -- the properties ----------------------------------------------------------------------


@given(data=st.data())
@examples(250)
def test_offsets_and_last_event_ids_of_digits_give_200_and_anything_else_400(jobs, data):
    """On every store: an _offset / Last-Event-ID of 1-18 ASCII digits serves the output
    from there (empty past the end), anything else is 400, for each format that reads it."""
    job_id = data.draw(st.sampled_from(jobs.ids), label="job")
    output = jobs.outputs[job_id]
    fmt = data.draw(st.sampled_from(FORMATS + (None,)), label="format")
    offset = data.draw(st.one_of(st.none(), offsets(len(output))), label="_offset")
    last_event = data.draw(st.one_of(st.none(), offsets(len(output))), label="Last-Event-ID")
    query = "_t=%s" % job_id
    if fmt is not None:
        query += "&_format=" + fmt
    if offset is not None:
        query += "&_offset=" + quote(offset, safe="")
    headers = {} if last_event is None else {"Last-Event-ID": last_event}
    code, response = call(jobs, "/?" + query, headers=headers)
    parsed = parse_qs(query, keep_blank_values=True)
    assert code == expected_status("GET", parsed, headers, jobs.ids), (query, headers, response.status)
    if code == 200:
        fmt = fmt or "html"
        raw = last_event if fmt == "events" and last_event is not None else offset
        start = int(raw) if raw is not None else 0
        check_output(response, fmt, job_id, output if fmt == "html" else output[start:])


@given(data=st.data())
@examples(200)
def test_mutated_job_ids_are_404_and_exact_ids_serve_only_their_own_output(jobs, data):
    """On every store: an id one character away (changed, cut, extended, case-flipped, ...)
    from a real one is 404 in every format; the exact id serves that job and no other."""
    exact = data.draw(st.booleans(), label="exact")
    job_id = data.draw(st.sampled_from(jobs.ids) if exact else mutated(jobs.ids), label="_t")
    fmt = data.draw(st.sampled_from(FORMATS + (None,)), label="format")
    query = "_t=" + quote(job_id, safe="") + ("" if fmt is None else "&_format=" + fmt)
    code, response = call(jobs, "/?" + query)
    assert code == (200 if exact else 404), (job_id, response.status)
    if exact:
        check_output(response, fmt or "html", job_id, jobs.outputs[job_id])
        other = [i for i in jobs.ids if i != job_id][0]
        assert jobs.markers[other].encode() not in response.data


@pytest.mark.stores("memory")
@given(data=st.data())
@examples(1000)
def test_hostile_raw_query_strings_never_give_5xx_tracebacks_or_another_jobs_output(jobs, data):
    """Raw query strings with invalid UTF-8 (%ff), NULs, broken escapes, huge values and
    repeated parameters: the answer is exactly what the decoded first values ask for."""
    query = data.draw(raw_queries(jobs.ids), label="query")
    method = data.draw(st.sampled_from(["GET", "GET", "HEAD", "POST"]), label="method")
    if method == "POST" and data.draw(st.booleans(), label="a cancel"):  # the hostile rest rides along
        query = "_t=%s&_action=cancel&%s" % (data.draw(st.sampled_from(jobs.ids), label="job"), query)
    code, response = call(jobs, "/?" + query, method=method)
    parsed = parse_qs(query, keep_blank_values=True)
    assert code == expected_status(method, parsed, {}, jobs.ids), (method, query[:300], response.status)
    assert code in (200, 303, 400, 404, 405)
    if code == 303:  # back to the job's page, the rest of the query kept and re-encoded
        back = parse_qs(urlsplit(response.headers["Location"]).query, keep_blank_values=True)
        assert back["_t"] == parsed["_t"] and "_action" not in back and "_format" not in back


@given(data=st.data())
@examples(60)
def test_huge_offsets_within_the_digit_bound_are_200_on_every_store(jobs, data):
    """Offsets far past the output (up to 18 digits) are an empty 200, on every store and
    in every format that reads them: the store must not choke on the number."""
    job_id = data.draw(st.sampled_from(jobs.ids), label="job")
    digits = data.draw(st.integers(10, MAX_OFFSET_DIGITS), label="digits")
    offset = str(data.draw(st.integers(10 ** (digits - 1), 10 ** digits - 1), label="offset"))
    fmt = data.draw(st.sampled_from(["text", "json", "stream", "events"]), label="format")
    via_header = fmt == "events" and data.draw(st.booleans(), label="via Last-Event-ID")
    query = "_t=%s&_format=%s" % (job_id, fmt) + ("" if via_header else "&_offset=" + offset)
    code, response = call(jobs, "/?" + query, headers={"Last-Event-ID": offset} if via_header else {})
    assert code == 200, (query, offset, response.status)
    check_output(response, fmt, job_id, "")


@pytest.mark.stores("memory")
@given(data=st.data())
@examples(500)
def test_any_accept_header_serves_a_known_job_as_html_json_or_events_and_format_wins(jobs, data):
    """Accept picks among html, json and events and can never make a known job a 400 or 5xx;
    an explicit _format always wins over it; an unknown id stays 404 whatever Accept says."""
    accept = data.draw(accept_headers(), label="Accept")
    fmt = data.draw(st.sampled_from(FORMATS + (None,)), label="format")
    known = data.draw(st.booleans(), label="known")
    job_id = data.draw(st.sampled_from(jobs.ids) if known else mutated(jobs.ids), label="_t")
    headers = {"Accept": accept}
    if data.draw(st.booleans(), label="with Last-Event-ID"):
        headers["Last-Event-ID"] = str(data.draw(st.integers(0, len(jobs.outputs[jobs.ids[0]]) + 5)))
    query = "_t=" + quote(job_id, safe="") + ("" if fmt is None else "&_format=" + fmt)
    code, response = call(jobs, "/?" + query, headers=headers)
    assert code == (200 if known else 404), (accept, query, response.status)
    if known:
        content_type = response.headers["Content-Type"]
        if fmt is not None:
            assert content_type == CONTENT_TYPES[fmt], (accept, fmt, content_type)
        else:
            assert content_type in (CONTENT_TYPES["html"], CONTENT_TYPES["json"], CONTENT_TYPES["events"]), accept


@pytest.mark.stores("memory")
@given(data=st.data())
@examples(400)
def test_cancel_posts_with_hostile_ids_and_actions_never_cancel_another_job(jobs, running, data):
    """POST ?_t=&_action=cancel with real, mutated and odd ids, odd _action values, odd Accept
    and _format: 303 back to the asked job, JSON, 404 or 405, and the running job C is never
    flagged by a request that did not name it exactly (nor by any GET)."""
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET"]), label="method")
    ids = jobs.ids
    finished = [i for i in ids if i != running.id]
    choices = [st.sampled_from(finished), mutated(ids), st.text(RAW_CHARS, max_size=30)]
    if method == "GET":
        choices.append(st.just(running.id))
    job_id = data.draw(st.one_of(*choices), label="_t")
    action = data.draw(st.sampled_from(["cancel", "cancel", "cancel", "Cancel", "cancel ", "cancel\x00", "",
                                        "cancel&_action=cancel", "stop", "cancel%00"]), label="_action")
    extra = data.draw(st.lists(st.sampled_from(["_format=json", "_format=xml", "_format=events", "_offset=-1",
                                                "_t=" + running.id, "a=%ff", "%00=%00", "_offset=5"]),
                               max_size=3), label="more")
    query = "&".join(["_t=" + quote(job_id, safe=""), "_action=" + (action if "&" in action or "%" in action
                                                                      else quote(action, safe=""))] + extra)
    headers = data.draw(st.sampled_from([{}, {"Accept": "application/json"}, {"Accept": "text/event-stream"},
                                         {"Accept": "application/json, text/html"}]), label="headers")
    code, response = call(jobs, "/?" + query, method=method, headers=headers)
    parsed = parse_qs(query, keep_blank_values=True)
    if method == "POST":
        assert code == expected_status("POST", parsed, headers, ids), (query, headers, response.status)
        if code == 303:
            back = parse_qs(urlsplit(response.headers["Location"]).query, keep_blank_values=True)
            assert back["_t"][0] == job_id and "_action" not in back, response.headers["Location"]
        if code == 200:
            assert json.loads(response.data) == {"id": job_id, "cancelled": False}
    else:
        assert code in (200, 400, 404), (query, response.status)
    record = get_runner().store.get(running.id)
    assert record["status"] == "running" and not record.get("cancel"), (method, query, headers)


def test_the_exact_cancel_post_still_cancels_the_running_job(jobs, running):
    """The other side of the property above: the one exact request does cancel C."""
    code, response = call(jobs, "/?_t=%s&_action=cancel" % running.id, method="POST",
                          headers={"Accept": "application/json"})
    assert code == 200 and json.loads(response.data) == {"id": running.id, "cancelled": True}
    assert get_runner().store.get(running.id).get("cancel")
