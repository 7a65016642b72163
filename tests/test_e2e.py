"""The example application under web.py's own server, over real HTTP on 127.0.0.1."""
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from servers import free_port, get, webpy_example


pytestmark = pytest.mark.stores("memory")  # the server has its own store


@pytest.fixture(scope="module")
def server():
    with webpy_example(free_port(), EXAMPLE_STEPS="5", EXAMPLE_DELAY="0.2") as s:
        yield s


def test_example_redirects_then_serves_growing_output_until_done(server):
    status, headers, _ = get(server.url + "/?keep=1")
    assert status == 303
    location = headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["keep"] == ["1"] and len(query["_t"][0]) >= 22

    seen, offset, text = [], 0, ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, headers, body = get(location + "&_format=json&_offset=%d" % offset)
        assert status == 200
        reply = json.loads(body)
        text += reply["output"]
        assert reply["offset"] >= offset
        offset = reply["offset"]
        seen.append(reply["status"])
        if reply["status"] == "done":
            break
        time.sleep(0.05)
    assert seen[-1] == "done" and "running" in seen
    lines = text.splitlines()
    assert lines[0].startswith("Started at ") and lines[1] == "hit f5 to refresh!"
    assert [line.split(":")[0] for line in lines[2:]] == ["0", "1", "2", "3", "4"]

    status, headers, body = get(location)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"hit f5 to refresh!" in body and b'http-equiv="refresh"' not in body


def test_bad_job_ids_get_a_short_404_and_the_server_keeps_serving(server):
    for bad in ("nope", "", "x" * 5000, "%3Cscript%3E"):
        status, headers, body = get(server.url + "/?_t=" + bad)
        assert status == 404 and len(body) < 100 and b"Traceback" not in body
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert get(server.url + "/")[0] == 303
