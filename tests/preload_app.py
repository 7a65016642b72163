"""The example app, with the job store opened in the server's master process
before it forks its workers (gunicorn --preload), to prove nothing carries over."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))

from application import application  # noqa: E402,F401
from web_background import threaddb  # noqa: E402

assert len(threaddb) >= 0  # opens the store (and its connection) in this process
