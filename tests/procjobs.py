"""Jobs run in a separate process, for tests across processes.

python tests/procjobs.py STORE_URL COMMAND ...:
  numbered N_JOBS LINES   start N_JOBS jobs printing LINES numbered lines each, wait, print their ids
  endless                 start one job printing until cancelled (at most 60 s), print its id, wait for it
  keyed NAME GATE START   at time START, start the job keyed NAME (it waits for the file GATE), print its id
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from web_background import background, configure  # noqa: E402


@background
def numbered(tag, lines):
    for i in range(lines):
        print("%s %06d" % (tag, i))
        if i % 500 == 0:
            time.sleep(0.001)  # let other threads and processes in
    return lines


@background
def endless():
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        print("tick %d" % i, flush=True)
        i += 1
        time.sleep(0.02)
    return "ran out"


@background(key=lambda name, gate_file: "report:" + name)
def keyed(name, gate_file):
    deadline = time.monotonic() + 30
    while not os.path.exists(gate_file) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


@background
def fails_once(marker):
    """Fails when the file ``marker`` is missing (and makes it): a retry then succeeds."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        print("failing")
        raise ConnectionError("passing network error")
    print("succeeded")
    return "ok"


def main(argv):
    url, command = argv[0], argv[1]
    configure(store=url, workers=8)
    if command == "numbered":
        jobs = [numbered("%d-%d" % (os.getpid(), n), int(argv[3])) for n in range(int(argv[2]))]
    elif command == "endless":
        jobs = [endless()]
    elif command == "fails_once":  # fails_once MARKER
        jobs = [fails_once(argv[2])]
    elif command == "keyed":  # keyed NAME GATE_FILE START_AT: start at the same moment as another process
        time.sleep(max(0.0, float(argv[4]) - time.time()))
        jobs = [keyed(argv[2], argv[3])]
    else:
        raise SystemExit("unknown command %r" % command)
    print(json.dumps([j.id for j in jobs]), flush=True)
    for j in jobs:
        j.wait(90)
    print(json.dumps([[j.id, str(j.status)] for j in jobs]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

