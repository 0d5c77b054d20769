"""Silence TensorFlow's start-up lines, so that a learner sees only what the course prints.

Importing this module changes nothing: `ftl.setup_notebook()` (the notebook's imports cell) and
the command line's `main` call the functions below, before anything imports TensorFlow
(a command, `import keras`, `ftl.train`). Two kinds of noise need two means:

* TensorFlow's C++ log lines once it has started ("failed call to cuInit" on a machine
  without a GPU, "oneDNN supports DT_HALF only ..."; both are logged as errors, though
  nothing failed): `TF_CPP_MIN_LOG_LEVEL=3`. A real failure still reaches the learner, as
  the Python exception TensorFlow raises.
* The lines written while TensorFlow's libraries load, before absl's logging is set up
  ("All log messages before absl::InitializeLog() ...", "oneDNN custom operations are on",
  "Could not find cuda drivers"): no setting reaches them, so the first import of TensorFlow,
  by anyone, runs with what it writes to stderr caught, and every line but these written back
  (`install_import_hook`, a finder on `sys.meta_path` that wraps TensorFlow's loader).

A user's own settings win (`setdefault`); `CUDA_VISIBLE_DEVICES` is left alone, so GPUs work.
"""

import contextlib
import importlib.abc
import importlib.machinery
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


def quiet_python_logger(tf) -> None:
    """TensorFlow's Python logger: errors only.

    "WARNING:tensorflow:5 out of the last 20 calls ... triggered tf.function retracing": each new
    Keras model traces its own predict function, as the course's cells build several models.
    """
    tf.get_logger().setLevel("ERROR")


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with its start-up lines filtered out of stderr."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):  # get_resource_reader, get_source...: TensorFlow's loader answers
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.loader.exec_module(module)
        quiet_python_logger(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, and hands back its spec with `_QuietLoader` around the loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install_import_hook() -> None:
    """Make the first import of TensorFlow quiet, whoever imports it (once; no-op if it is loaded)."""
    if "tensorflow" in sys.modules:
        quiet_python_logger(sys.modules["tensorflow"])
    elif not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


@contextlib.contextmanager
def absl_warnings_off():
    """Inside the block, absl's Python logger says only errors (tensorflow-datasets' checks of its
    folders warn "Variant folder ... has no dataset_info.json" before anything was downloaded)."""
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def ignore_spurious_keras_warnings() -> None:
    """Hide Keras' warning about a default it ignores: fit(shuffle=True) with a tf.data dataset.

    Keras 3.15 warns on every `model.fit(dataset)` with the default `shuffle=True`, though the
    course's datasets are shuffled already; a learner's correct `fit` call should print nothing.
    """
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed, but will be ignored",
                            category=UserWarning)

