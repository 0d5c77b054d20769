"""A cluster job: TF_CONFIG checked, the bounded wait for the other workers, and its accelerator.

`choose_accelerator()` is what the command line calls instead of `detect_accelerator()`: when
TF_CONFIG names several machines, it checks TF_CONFIG, waits for the other workers, and returns
an `Accelerator` over TensorFlow's MultiWorkerMirroredStrategy that trains with
`multiworker.fit_across_workers` (docs/running_everywhere.md); otherwise the course's own choice.
"""

import contextlib
import json
import os
from typing import Optional

from ..accelerator import Accelerator, detect_accelerator
from ..errors import ConfigError
from ..messages import N_, N_plural, say, say_n

NOT_JSON = N_("is not valid JSON ({problem})")
NOT_AN_OBJECT = N_("is a JSON {kind}, not an object")
CLUSTER_NOT_AN_OBJECT = N_("has a 'cluster' that is not an object")
NOT_ADDRESSES = N_("lists '{role}' as {addresses}, not a list of \"host:port\"")
NO_TASK = N_("has no 'task' whose 'type' is one of {roles}")
NO_SUCH_TASK = N_plural("has task index {index}, but '{role}' lists {count} address",
                        "has task index {index}, but '{role}' lists {count} addresses")

TF_CONFIG_INVALID = N_("TF_CONFIG {problem}. It should look like "
                       "{{\"cluster\": {{\"worker\": [\"host1:port\", \"host2:port\"]}}, "
                       "\"task\": {{\"type\": \"worker\", \"index\": 0}}}}; fix it, or unset it "
                       "(`unset TF_CONFIG`) to train on this machine alone.")
WAITING_FOR_WORKERS = N_("Waiting up to {seconds} s for the other workers named in TF_CONFIG: {addresses}")
WORKERS_SILENT = N_("the workers {addresses} named in TF_CONFIG did not answer within {seconds} s: start them "
                    "(same TF_CONFIG, each with its own task index), fix their addresses, or unset TF_CONFIG "
                    "to train on this machine alone ({variable} sets how long to wait).")
CANNOT_LISTEN = N_("this worker cannot listen on {address}, its own address in TF_CONFIG ({problem}): "
                   "choose a free port there.")
BAD_WAIT = N_("{variable}='{value}' is not a number of seconds above 0 (the default is {default}).")
STOPPED_WAITING = N_("stopped while waiting for the other workers named in TF_CONFIG")
# How long `choose_accelerator` waits for the other workers of TF_CONFIG, and the variable that sets it.
WORKER_WAIT_S = 120
WORKER_WAIT_VARIABLE = "FLOWERS_TL_WORKER_TIMEOUT"


def cluster_size() -> int:
    """Number of workers named in TF_CONFIG (0 when unset); ConfigError when it is malformed.

    A malformed TF_CONFIG is refused by name: ignored, it would let a cluster job quietly train as
    one worker.
    """
    config = tf_config()
    return sum(len(addresses) for addresses in config.get("cluster", {}).values()) if config else 0


def tf_config() -> Optional[dict]:
    """TF_CONFIG, parsed and checked (None when unset or empty)."""
    raw: Optional[str] = os.environ.get("TF_CONFIG")
    if not raw or not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except ValueError as error:
        raise _invalid(say(NOT_JSON, problem=error)) from None
    if not isinstance(config, dict):
        raise _invalid(say(NOT_AN_OBJECT, kind=type(config).__name__))
    cluster = config.get("cluster", {})
    if not isinstance(cluster, dict):
        raise _invalid(say(CLUSTER_NOT_AN_OBJECT))
    for role, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(_is_address(a) for a in addresses):
            raise _invalid(say(NOT_ADDRESSES, role=role, addresses=json.dumps(addresses)[:100]))
    if sum(len(addresses) for addresses in cluster.values()) > 1:
        task = config.get("task")
        if not isinstance(task, dict) or task.get("type") not in cluster:
            raise _invalid(say(NO_TASK, roles=sorted(cluster)))
        index = task.get("index", 0)
        if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
            count = len(cluster[task["type"]])
            raise _invalid(say_n(*NO_SUCH_TASK, count, index=repr(index), role=task["type"], count=count))
    return config


def _invalid(problem: str):
    return ConfigError(say(TF_CONFIG_INVALID, problem=problem))


def _is_address(address) -> bool:
    """'host:port' with a port number."""
    return isinstance(address, str) and address.rpartition(":")[2].isdigit() and bool(address.rpartition(":")[0])


def wait_for_workers(timeout_s: Optional[float] = None) -> None:
    """Wait (bounded) until every other worker of TF_CONFIG accepts a TCP connection.

    TensorFlow's MultiWorkerMirroredStrategy waits for missing workers forever, inside C++
    where neither SIGTERM nor Ctrl+C reach it. So, before it starts, this worker listens on
    its own address (so the others see it too), probes the others every second for up to
    `timeout_s` (default: $FLOWERS_TL_WORKER_TIMEOUT, else WORKER_WAIT_S), saying that it
    waits, then raises ConfigError naming the silent addresses. SIGTERM and SIGINT end the
    wait with a KeyboardInterrupt (the command line prints "interrupted"), whatever
    handlers were there before (they are put back after the wait).
    """
    import signal
    import threading
    import time

    config = tf_config() or {}
    task = config.get("task", {})
    own = config["cluster"][task["type"]][task.get("index", 0)]
    others = [a for role in config["cluster"].values() for a in role if a != own]
    timeout_s = _worker_wait() if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    on_main_thread = threading.current_thread() is threading.main_thread()
    # Both signals stop the wait, even where SIGINT was inherited ignored (a shell's background job).
    previous = {signum: signal.signal(signum, _stop_waiting)
                for signum in (signal.SIGTERM, signal.SIGINT)} if on_main_thread else {}
    try:
        with _listening(own):
            silent = _silent(others)
            if silent:
                print(say(WAITING_FOR_WORKERS, seconds=format(timeout_s, "g"), addresses=", ".join(silent)), flush=True)
            while silent and time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                silent = _silent(silent)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if silent:
        raise ConfigError(say(WORKERS_SILENT, addresses=", ".join(silent), seconds=format(timeout_s, "g"),
                              variable=WORKER_WAIT_VARIABLE))


def _stop_waiting(signum, frame):
    """SIGTERM or SIGINT while waiting: stop like Ctrl+C does."""
    raise KeyboardInterrupt(say(STOPPED_WAITING))


def _worker_wait() -> float:
    """Seconds to wait for the other workers: $FLOWERS_TL_WORKER_TIMEOUT, else WORKER_WAIT_S."""
    variable = WORKER_WAIT_VARIABLE
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return float(WORKER_WAIT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(say(BAD_WAIT, variable=variable, value=raw, default=WORKER_WAIT_S))
    return seconds


def _silent(addresses) -> list:
    """The addresses that refuse or ignore a TCP connection (within a second each)."""
    import socket

    silent = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                pass
        except OSError:
            silent.append(address)
    return silent


@contextlib.contextmanager
def _listening(address: str):
    """Listen on this worker's own port while waiting, so the other workers' probes find it.

    Closed before TensorFlow starts its own server on that port (SO_REUSEADDR lets it bind
    at once). A port that cannot be bound at all is refused by name.
    """
    import socket

    port = int(address.rpartition(":")[2])
    try:
        server = socket.create_server(("", port), reuse_port=False)
    except OSError as error:
        raise ConfigError(say(CANNOT_LISTEN, address=address, problem=error.strerror or error)) from None
    try:
        yield
    finally:
        server.close()


def choose_accelerator(verbose: bool = True) -> Accelerator:
    """The accelerator of this run: a cluster's when TF_CONFIG names several machines (TensorFlow
    backend), else `detect_accelerator()`. A malformed TF_CONFIG is refused by name."""
    import keras

    if keras.backend.backend() != "tensorflow" or cluster_size() <= 1:
        return detect_accelerator(verbose)
    import tensorflow as tf

    from .multiworker import fit_across_workers

    wait_for_workers()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    accelerator = Accelerator(kind="GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                              replicas=strategy.num_replicas_in_sync, backend="tensorflow", strategy=strategy,
                              fit_across_machines=fit_across_workers)
    if verbose:
        print(accelerator.describe())
    return accelerator
