"""Is the internet there? Asked once per process, answered in seconds.

The course's online sources (the course bucket, tensorflow-datasets' tf_flowers, Keras'
ImageNet weights) are all served by Google Cloud Storage. Without a network, the libraries
that fetch them retry for minutes before failing (tensorflow-datasets: about 3.5 minutes);
one short connection to that host tells the same in at most `TIMEOUT_S` seconds, and the
answer is kept for the rest of the process. `FLOWERS_TL_OFFLINE=1` skips the probe: offline.
"""

import functools
import os
import socket
import threading

HOST = ("storage.googleapis.com", 443)  # serves the bucket, tf_flowers and the Keras weights
TIMEOUT_S = 3.0
OFFLINE_ENV_VARIABLE = "FLOWERS_TL_OFFLINE"


@functools.lru_cache(maxsize=None)
def is_online() -> bool:
    """True when `HOST` answers a TCP connection within `TIMEOUT_S` (asked once per process)."""
    if os.environ.get(OFFLINE_ENV_VARIABLE, "") not in ("", "0"):
        return False
    return reachable(HOST, TIMEOUT_S)


def reachable(address, timeout_s: float) -> bool:
    """Whether a TCP connection to (host, port) opens within `timeout_s`, name lookup included.

    The lookup has no timeout of its own (a broken resolver can take minutes), so the probe
    runs in a daemon thread and is given up after `timeout_s`.
    """
    answer = []

    def probe():
        try:
            with socket.create_connection(address, timeout=timeout_s):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answer and answer[0])
