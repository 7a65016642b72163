"""Log records made in a job: once in the job's output, and still to every
handler the app configured, where that handler writes.

A record factory, not a root handler: it sees every record made in a job's
thread whatever handlers the app installs, before or after us, and it does not
stop a later ``logging.basicConfig()`` from configuring the root logger.
While the handlers run, the thread's output is not routed to the job, so a
handler writing to ``sys.stderr`` writes to the server's stderr (where the app
meant it to), not a second time into the job.
"""

import logging
from typing import Any

from . import capture

_FORMAT = logging.Formatter("%(levelname)s:%(name)s:%(message)s")


@capture.on_first_job
def install() -> None:
    """Chain our record factory and our call of the handlers."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        write = capture.log_writer()
        if write is not None and record.name != "web_background":  # not ours about the job
            try:
                write(_FORMAT.format(record) + "\n")
            except Exception:  # a bad format string must not break the job
                write("(unformattable log record %r)\n" % (record.msg,))
        return record

    logging.setLogRecordFactory(factory)
    call_handlers = logging.Logger.callHandlers

    def call_handlers_outside_the_job(self: logging.Logger, record: logging.LogRecord) -> None:
        if capture.log_writer() is None:
            return call_handlers(self, record)
        routed = capture.suspend()
        try:
            return call_handlers(self, record)
        finally:
            capture.resume(routed)

    logging.Logger.callHandlers = call_handlers_outside_the_job  # type: ignore[method-assign]
