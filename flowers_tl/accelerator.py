"""Find the best accelerator available and describe it in one object.

`detect_accelerator()` is the one call a notebook makes. It returns an
`Accelerator` whose `scope()` is where models are built, whatever the Keras
backend:

* TensorFlow backend: a TPU (`TPUStrategy`, local or named by `TPU_NAME`), several GPUs or
  logical CPU devices (`MirroredStrategy`), else the default strategy. A cluster of several
  machines (`TF_CONFIG`, `MultiWorkerMirroredStrategy`) is the command line's:
  `tool.cluster.choose_accelerator`.
* JAX backend (`KERAS_BACKEND=jax`, e.g. today's Colab TPU runtime):
  `keras.distribution.DataParallel` over all JAX devices when there are several.
"""

import contextlib
import dataclasses
import glob
import os
from typing import Any, Callable, Optional

import keras

from . import rules
from .errors import first_line
from .messages import N_, say

NO_DISTRIBUTION = N_("Keras backend '{backend}' has no distribution support here")
NOTE = N_("Note: {note}")
NO_TPU_DEVICE = N_("TPU system initialised but no TPU device is visible")
TPU_NOT_USED = N_("TPU not used ({kind}: {problem}); falling back.")
ONE_REPLICA = N_("Running on {kind} with 1 replica (Keras backend: {backend})")
REPLICAS = N_("Running on {kind} with {replicas} replicas (Keras backend: {backend})")


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
        fit_across_machines: for a cluster of several machines only, the training loop that
            replaces Keras' `fit` there, `(model, TrainingRun) -> history`: the command line's
            `tool.cluster.choose_accelerator` sets it (`tool.multiworker.fit_across_workers`).
    """

    kind: str
    replicas: int
    backend: str
    strategy: Any = None
    distribution: Any = None
    note: str = ""
    fit_across_machines: Optional[Callable] = None

    def scope(self):
        """Context manager under which models (and their variables) are built."""
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    def global_batch_size(self, per_replica_batch_size: int) -> int:
        """The batch size one training step consumes: per replica x replicas."""
        return rules.at_least(per_replica_batch_size, "batch_size") * self.replicas

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


def is_multi_worker(accelerator) -> bool:
    """True when training spans several machines (a cluster job of the command line)."""
    return accelerator is not None and accelerator.fit_across_machines is not None


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
