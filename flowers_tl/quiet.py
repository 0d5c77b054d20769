"""Silence TensorFlow's start-up lines, so that a learner sees only what the course prints.

Imported first by `flowers_tl/__init__.py`, before anything imports TensorFlow. Two kinds of
noise need two means:

* TensorFlow's C++ log lines once it has started ("failed call to cuInit" on a machine
  without a GPU, "oneDNN supports DT_HALF only ..."; both are logged as errors, though
  nothing failed): `TF_CPP_MIN_LOG_LEVEL=3`. A real failure still reaches the learner, as
  the Python exception TensorFlow raises.
* The lines written while TensorFlow's libraries load, before absl's logging is set up
  ("All log messages before absl::InitializeLog() ...", "oneDNN custom operations are on",
  "Could not find cuda drivers"): no setting reaches them, so `import_tensorflow` catches
  what the import writes to stderr and writes back every line but these.

A user's own settings win (`setdefault`); `CUDA_VISIBLE_DEVICES` is left alone, so GPUs work.
"""

import contextlib
import os
import re
import sys
import tempfile
import warnings

ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logs: fatal only (errors arrive as exceptions)
}

START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|cpu_feature_guard|rebuild TensorFlow with the appropriate compiler flags")


def set_defaults() -> None:
    """Set the quiet logging variables that the user has not set."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def filtered_stderr():
    """Catch what C++ code writes to file descriptor 2; write back all but `START_UP_NOISE` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not START_UP_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow() -> None:
    """Import TensorFlow without its start-up lines, and quiet its Python logger."""
    if "tensorflow" not in sys.modules:
        with filtered_stderr():
            import tensorflow  # noqa: F401  (the import is the point)
    import tensorflow as tf

    # "WARNING:tensorflow:5 out of the last 20 calls ... triggered tf.function retracing": each new
    # Keras model traces its own predict function, as the course's cells build several models.
    tf.get_logger().setLevel("ERROR")


def ignore_spurious_keras_warnings() -> None:
    """Hide Keras' warning about a default it ignores: fit(shuffle=True) with a tf.data dataset.

    Keras 3.15 warns on every `model.fit(dataset)` with the default `shuffle=True`, though the
    course's datasets are shuffled already; a learner's correct `fit` call should print nothing.
    """
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed, but will be ignored",
                            category=UserWarning)


set_defaults()
ignore_spurious_keras_warnings()
