"""Find the best accelerator available and describe it in one object.

`detect_accelerator()` is the one call a notebook makes. It returns an
`Accelerator` whose `scope()` is where models are built, whatever the Keras
backend:

* TensorFlow backend: a TPU (`TPUStrategy`, local or named by `TPU_NAME`),
  a cluster described by `TF_CONFIG` (`MultiWorkerMirroredStrategy`), several
  GPUs or logical CPU devices (`MirroredStrategy`), else the default strategy.
* JAX backend (`KERAS_BACKEND=jax`, e.g. today's Colab TPU runtime):
  `keras.distribution.DataParallel` over all JAX devices when there are several.
"""

import contextlib
import dataclasses
import glob
import json
import os
from typing import Any, Optional

import keras

from .errors import first_line
from .messages import N_, N_plural, say, say_n

BAD_BATCH_SIZE = N_("batch size must be a positive integer, got {value}")
NO_DISTRIBUTION = N_("Keras backend '{backend}' has no distribution support here")
NOTE = N_("Note: {note}")
NO_TPU_DEVICE = N_("TPU system initialised but no TPU device is visible")
TPU_NOT_USED = N_("TPU not used ({kind}: {problem}); falling back.")
NOT_JSON = N_("is not valid JSON ({problem})")
NOT_AN_OBJECT = N_("is a JSON {kind}, not an object")
CLUSTER_NOT_AN_OBJECT = N_("has a 'cluster' that is not an object")
NOT_ADDRESSES = N_("lists '{role}' as {addresses}, not a list of \"host:port\"")
NO_TASK = N_("has no 'task' whose 'type' is one of {roles}")
NO_SUCH_TASK = N_plural("has task index {index}, but '{role}' lists {count} address",
                        "has task index {index}, but '{role}' lists {count} addresses")

ONE_REPLICA = N_("Running on {kind} with 1 replica (Keras backend: {backend})")
REPLICAS = N_("Running on {kind} with {replicas} replicas (Keras backend: {backend})")
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
# How long `detect_accelerator` waits for the other workers of TF_CONFIG, and the variable that sets it.
WORKER_WAIT_S = 120
WORKER_WAIT_VARIABLE_NAME = ("FLOWERS_TL_WORKER_TIMEOUT",)  # a tuple: a name, not a sentence


@dataclasses.dataclass
class Accelerator:
    """What the course runs on.

    Attributes:
        kind: "TPU", "GPU" or "CPU".
        replicas: how many copies of the model train in parallel.
        backend: the Keras backend ("tensorflow" or "jax").
        strategy: the `tf.distribute.Strategy` (TensorFlow backend), else None.
        distribution: the `keras.distribution` object (JAX backend), else None.
        note: why a faster option was not used (empty when nothing failed).
    """

    kind: str
    replicas: int
    backend: str
    strategy: Any = None
    distribution: Any = None
    note: str = ""

    def scope(self):
        """Context manager under which models (and their variables) are built."""
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    def global_batch_size(self, per_replica_batch_size: int) -> int:
        """The batch size one training step consumes: per replica x replicas."""
        if per_replica_batch_size < 1:
            from .errors import ConfigError

            raise ConfigError(say(BAD_BATCH_SIZE, value=per_replica_batch_size))
        return per_replica_batch_size * self.replicas

    @property
    def is_tpu(self) -> bool:
        return self.kind == "TPU"

    def describe(self) -> str:
        """One line such as 'Running on TPU with 8 replicas (Keras backend: jax)', in the course's language."""
        return say(ONE_REPLICA if self.replicas == 1 else REPLICAS, kind=self.kind, replicas=self.replicas,
                   backend=self.backend)

    def __str__(self) -> str:
        return self.describe()


def accelerator_scope(accelerator: Optional[Accelerator]):
    """A fresh `accelerator.scope()`, or a no-op context when there is no accelerator.

    Fresh for each use: a strategy's scope object cannot be entered twice.
    """
    return accelerator.scope() if accelerator is not None else contextlib.nullcontext()


def detect_accelerator(verbose: bool = True) -> Accelerator:
    """Return the best accelerator for the current Keras backend and print it.

    A TPU that is expected (a TPU VM, Colab TPU, `TPU_NAME` set) but cannot be
    initialised is reported with a one-line reason, then the next best option is used.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        accelerator = _detect_jax()
    elif backend == "tensorflow":
        accelerator = _detect_tensorflow()
    else:
        accelerator = Accelerator(kind="CPU", replicas=1, backend=backend,
                                  note=say(NO_DISTRIBUTION, backend=backend))
    if verbose:
        if accelerator.note:
            print(say(NOTE, note=accelerator.note))
        print(accelerator.describe())
    return accelerator


def _detect_jax() -> Accelerator:
    import jax

    devices = jax.devices()
    kind = _jax_platform_kind(devices[0].platform)
    if len(devices) == 1:
        return Accelerator(kind=kind, replicas=1, backend="jax")
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    return Accelerator(kind=kind, replicas=len(devices), backend="jax",
                       distribution=distribution)


def _jax_platform_kind(platform: str) -> str:
    return {"tpu": "TPU", "gpu": "GPU", "cuda": "GPU", "rocm": "GPU"}.get(platform.lower(), "CPU")


def _detect_tensorflow() -> Accelerator:
    import tensorflow as tf

    note = ""
    if _tpu_expected():
        try:
            strategy = _connect_tpu()
            return Accelerator(kind="TPU", replicas=strategy.num_replicas_in_sync,
                               backend="tensorflow", strategy=strategy)
        except Exception as error:  # any failure: fall back, but say why
            note = say(TPU_NOT_USED, kind=type(error).__name__, problem=first_line(error, 200))

    if _tf_config_cluster_size() > 1:
        wait_for_workers()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        return Accelerator(kind=kind, replicas=strategy.num_replicas_in_sync,
                           backend="tensorflow", strategy=strategy, note=note)

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([g.name for g in gpus])
        return Accelerator(kind="GPU", replicas=len(gpus), backend="tensorflow",
                           strategy=strategy, note=note)
    if len(gpus) == 1:
        return Accelerator(kind="GPU", replicas=1, backend="tensorflow",
                           strategy=tf.distribute.get_strategy(), note=note)

    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:  # logical CPU devices, e.g. set up by tests or workshops
        strategy = tf.distribute.MirroredStrategy([c.name for c in cpus])
        return Accelerator(kind="CPU", replicas=len(cpus), backend="tensorflow",
                           strategy=strategy, note=note)
    return Accelerator(kind="CPU", replicas=1, backend="tensorflow",
                       strategy=tf.distribute.get_strategy(), note=note)


def _tpu_expected() -> bool:
    """True where a TPU may exist: TPU_NAME set, Colab/Kaggle TPU, or TPU device files."""
    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return True
    if os.environ.get("TPU_ACCELERATOR_TYPE") or os.environ.get("KAGGLE_TPU"):
        return True
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def _connect_tpu():
    """Connect to the local TPU (or the one named by TPU_NAME) and return a TPUStrategy."""
    import tensorflow as tf

    tpu_name = os.environ.get("TPU_NAME", "local")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    if not tf.config.list_logical_devices("TPU"):
        raise RuntimeError(say(NO_TPU_DEVICE))
    return tf.distribute.TPUStrategy(resolver)


def _tf_config_cluster_size() -> int:
    """Number of workers named in TF_CONFIG (0 when unset); ConfigError when it is malformed.

    A malformed TF_CONFIG used to be ignored, so a cluster job quietly trained as one
    worker; it is refused by name instead.
    """
    config = _tf_config()
    return sum(len(addresses) for addresses in config.get("cluster", {}).values()) if config else 0


def _tf_config() -> Optional[dict]:
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
    from .errors import ConfigError

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

    config = _tf_config() or {}
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
        from .errors import ConfigError

        raise ConfigError(say(WORKERS_SILENT, addresses=", ".join(silent), seconds=format(timeout_s, "g"),
                              variable=WORKER_WAIT_VARIABLE_NAME[0]))


def _stop_waiting(signum, frame):
    """SIGTERM or SIGINT while waiting: stop like Ctrl+C does."""
    raise KeyboardInterrupt(say(STOPPED_WAITING))


def _worker_wait() -> float:
    """Seconds to wait for the other workers: $FLOWERS_TL_WORKER_TIMEOUT, else WORKER_WAIT_S."""
    variable = WORKER_WAIT_VARIABLE_NAME[0]
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return float(WORKER_WAIT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        from .errors import ConfigError

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
        from .errors import ConfigError

        raise ConfigError(say(CANNOT_LISTEN, address=address, problem=error.strerror or error)) from None
    try:
        yield
    finally:
        server.close()


# The TensorFlow TPU guide runs about 50 steps per call to the TPU for a large speed-up.
TPU_STEPS_PER_EXECUTION = 50


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How to feed and compile a model for one accelerator, decided in one place.

    Attributes:
        global_batch_size: images per training step, over all replicas.
        steps_per_execution: training steps per call into the device (Keras `compile`).
        drop_remainder: training batches all full (TPUs need static shapes).
        batch_multiple: every batch, validation included, must split evenly into
            this many parts (JAX's DataParallel shards each batch over its devices).
        precision_policy: the Keras dtype policy to build the model under.
    """

    global_batch_size: int
    steps_per_execution: int = 1
    drop_remainder: bool = False
    batch_multiple: int = 1
    precision_policy: str = "float32"


def training_settings(accelerator: Optional[Accelerator] = None, batch_size: int = 64,
                      mixed_precision: bool = False) -> TrainingSettings:
    """The settings the course uses on `accelerator` (None: one CPU or GPU).

    `batch_size` is per replica. On a TPU: 50 steps per execution, full training
    batches only, and `mixed_bfloat16` when `mixed_precision` is asked for (TPUs
    compute natively in bfloat16; elsewhere it would be slower, so it is ignored).
    """
    if accelerator is None:
        accelerator = Accelerator(kind="CPU", replicas=1, backend=keras.backend.backend())
    tpu = accelerator.is_tpu
    return TrainingSettings(
        global_batch_size=accelerator.global_batch_size(batch_size),
        steps_per_execution=TPU_STEPS_PER_EXECUTION if tpu else 1,
        drop_remainder=tpu,
        batch_multiple=accelerator.replicas if accelerator.backend == "jax" else 1,
        precision_policy="mixed_bfloat16" if tpu and mixed_precision else "float32")


def use_precision(settings: TrainingSettings) -> None:
    """Build models from now on under `settings.precision_policy` (call before build_model).

    The model's last layer (the softmax) always computes in float32, so the
    probabilities and the loss stay accurate under mixed_bfloat16.
    """
    keras.mixed_precision.set_global_policy(settings.precision_policy)
