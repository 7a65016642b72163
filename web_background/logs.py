"""Log records made in a job: once in the job's output, and still to every
handler the app configured, where that handler writes.

One hook, in ``Logger.callHandlers``: it sees every record a logger lets
through, whatever handlers the app installs before or after us, and it does
not stop a later ``logging.basicConfig()`` from configuring the root logger.
The job's line is formatted from a copy of the record, so each of the app's
handlers formats the record itself, with its own formatter (its own
``formatException``, stack info, JSON).  While the handlers run, the thread's
output is not routed to the job, so a handler writing to ``sys.stderr``
writes to the server's stderr (where the app meant it to), not a second time
into the job.
"""

import copy
import logging

from . import capture

_FORMAT = logging.Formatter("%(levelname)s:%(name)s:%(message)s")


def _line(record: logging.LogRecord) -> str:
    """The job's line for ``record``, made from a copy: formatting caches
    ``message`` and ``exc_text`` on the record it formats."""
    try:
        return _FORMAT.format(copy.copy(record)) + "\n"
    except Exception:  # a bad format string must not break the job
        return "(unformattable log record %r)\n" % (record.msg,)


@capture.on_first_job
def install() -> None:
    """Wrap ``Logger.callHandlers``: the job's copy first, then the app's handlers."""
    call_handlers = logging.Logger.callHandlers

    def call_handlers_outside_the_job(self: logging.Logger, record: logging.LogRecord) -> None:
        write = capture.log_writer()
        if write is None:
            return call_handlers(self, record)
        if record.name != "web_background":  # not ours about the job
            write(_line(record))
        routed = capture.suspend()
        try:
            return call_handlers(self, record)
        finally:
            capture.resume(routed)

    logging.Logger.callHandlers = call_handlers_outside_the_job  # type: ignore[method-assign]
