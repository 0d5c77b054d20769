"""Short messages for the course's known mistakes in a notebook, the full traceback one `%tb` away.

`ftl.setup_notebook()` calls `install_notebook_hooks()` in a Jupyter/IPython kernel:
* a custom exception handler (IPython's `set_custom_exc`) prints, for a known learner mistake
  (a `____` left in, the include_top / weights-file mismatch, an image-shape mismatch, a one-hot
  loss on integer labels, a variable used before its cell ran, any error the package raises on
  purpose, a cell stopped with the Stop button), one sentence that names the fix and
  FULL_TRACEBACK; any other error shows IPython's usual traceback, unchanged;
* a `post_run_cell` hook records in flowers_tl.attempts whether each cell ran to the end, so a
  check after a crashed attempt says "your cell did not finish".
Outside IPython (scripts, the command line, pytest) nothing is installed.
"""

import re
import sys
from typing import Optional

from .attempts import BlankError, record_cell_run, watched
from .errors import FlowersTLError
from .messages import N_, say

BLANK_LEFT = N_("A ____ blank is still in this cell: replace it with your code, then run the cell again.")
WEIGHTS_WITHOUT_TOP = N_("The weights file is for a MobileNetV2 without its ImageNet classifier: create it with "
                         "include_top=False.")
WRONG_IMAGE_SHAPE = N_("A layer got images of shape {shape}: every image is [*IMAGE_SIZE, 3], write "
                       "keras.Input(shape=[*IMAGE_SIZE, 3]) and input_shape=[*IMAGE_SIZE, 3].")
LABELS_NOT_ONE_HOT = N_("The loss expects one-hot labels, but the dataset gives integer classes (0 to 4): compile "
                        "with loss='sparse_categorical_crossentropy'.")
NOT_DEFINED = N_("`{variable}` does not exist yet: run the exercise's cell above, which assigns it (fix its error "
                 "first), then run this check again.")
UNKNOWN_NAME = N_("Keras knows no {kind} called '{name}': check its spelling (the course uses activation='softmax', "
                  "optimizer='adam', loss='sparse_categorical_crossentropy' and metrics=['accuracy']).")
STOPPED = N_("Stopped: the cell was interrupted before it finished, so what it assigns may be missing or half "
             "done. Run it again to finish it.")
FULL_TRACEBACK = N_("(The full error message: run %tb in a new cell.)")

_LAYER_COUNT = re.compile(r"Layer count mismatch")
_UNKNOWN_NAME = re.compile(r"Could not interpret (activation function|optimizer|loss|metric) identifier: (.+)$")
KIND_ACTIVATION = N_("activation function")
KIND_OPTIMIZER = N_("optimizer")
KIND_LOSS = N_("loss function")
KIND_METRIC = N_("metric")
_KINDS = {"activation function": KIND_ACTIVATION, "optimizer": KIND_OPTIMIZER, "loss": KIND_LOSS, "metric": KIND_METRIC}
_SHAPE = re.compile(r"is incompatible with the layer: expected shape=\([^)]*\), found shape=(\([^)]*\))|"
                    r"Kernel shape must have the same length as input, .* input of shape (\([^)]*\))")
_ONE_HOT_ON_INTEGERS = re.compile(r"target\.shape=\(None,?\), output\.shape=\(None, \d+\)|"
                                  r"`target` and `output` must have the same rank")


def friendly_message(error: BaseException) -> Optional[str]:
    """The course's one-sentence message for a known learner mistake, or None for any other error."""
    text = str(error)
    if isinstance(error, BlankError):
        return say(BLANK_LEFT)
    if isinstance(error, KeyboardInterrupt):
        return say(STOPPED)
    if isinstance(error, FlowersTLError):  # already the package's own sentence, naming the fix
        return text
    if isinstance(error, NameError):  # a check cell run before its exercise's cell ever finished
        return say(NOT_DEFINED, variable=error.name) if getattr(error, "name", None) in watched() else None
    if not isinstance(error, ValueError):
        return None
    if _LAYER_COUNT.search(text):
        return say(WEIGHTS_WITHOUT_TOP)
    unknown = _UNKNOWN_NAME.search(text.strip().splitlines()[0] if text.strip() else "")
    if unknown:
        return say(UNKNOWN_NAME, kind=say(_KINDS[unknown.group(1)]), name=unknown.group(2).strip())
    if _ONE_HOT_ON_INTEGERS.search(text):
        return say(LABELS_NOT_ONE_HOT)
    shape = _SHAPE.search(text)
    if shape:
        return say(WRONG_IMAGE_SHAPE, shape=shape.group(1) or shape.group(2))
    return None


def _show_error(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: the short message for a known mistake, else the usual traceback."""
    message = friendly_message(value)
    if message is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return None
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb  # what %tb shows
    if isinstance(value, KeyboardInterrupt):
        shell._showtraceback(etype, value, [message])
        return None
    shell._showtraceback(etype, value, [f"{etype.__name__}: {message}", say(FULL_TRACEBACK)])
    return None


def _record_cell(result) -> None:
    """post_run_cell hook: record whether the cell that just ran finished (see attempts.record_cell_run)."""
    record_cell_run(result.info.raw_cell or "", finished=result.success)


def install_notebook_hooks() -> bool:
    """In an IPython kernel, install the short error messages and the attempt tracking; True if installed."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if shell is None:
        return False
    shell.set_custom_exc((FlowersTLError, KeyboardInterrupt, NameError, ValueError), _show_error)
    if _record_cell not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", _record_cell)
    return True
