"""What the learner's notebook holds and did: the `____` blank, which cells finished, its variables.

The ground the checks (`exercises`) and the notebook's short error messages (`learner_errors`)
both stand on:
* `____`, the blank the playground leaves for the learner, and the errors a learner's cell can
  raise when used as a value (`BlankError`);
* which exercise variables there are (`watch`) and whether the last cell that assigned each
  one finished (`record_cell_run`, called by learner_errors' notebook hook after every cell);
* `notebook_variable`: a variable of the notebook's namespace (IPython's `user_ns`), so a
  check finds the learner's work by itself, as Kaggle learntools' `check()` does.
"""

import re
import sys

from .errors import FlowersTLError
from .messages import N_, say

BLANK_AS_TRUTH = N_("a ____ blank is used as True/False: replace it with a value first.")
BLANK_AS_NUMBER = N_("a ____ blank is used as a number: replace it with a value first.")

MISSING = object()  # what notebook_variable gives for a name the notebook does not (yet) hold

_watched = set()  # the variables the exercises read
_finished_cells = {}  # exercise variable -> did the last notebook cell that assigned it finish?


class BlankError(FlowersTLError):
    """A `____` blank was used where a real value is needed."""


class Blank:
    """The `____` placeholder of the playground: it stands in anywhere without crashing.

    Assigning it, reading or setting its attributes and calling it all do nothing,
    so a half-filled cell still runs; `check()` then reports "not attempted".
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "____"

    def __getattr__(self, name):
        if name.startswith("_"):  # let Python, IPython and pickle see an ordinary object
            raise AttributeError(name)
        return self

    def __setattr__(self, name, value) -> None:
        pass

    def __call__(self, *args, **kwargs) -> None:
        return None

    def __bool__(self):
        raise BlankError(say(BLANK_AS_TRUTH))

    def __index__(self):
        raise BlankError(say(BLANK_AS_NUMBER))


____ = Blank()


def is_blank(value) -> bool:
    """True for the `____` placeholder (the learner has not filled this in yet)."""
    return isinstance(value, Blank)


def watch(variable: str) -> None:
    """Follow the cells that assign `variable` (an exercise's variable)."""
    _watched.add(variable)


def watched() -> frozenset:
    """The exercise variables followed."""
    return frozenset(_watched)


def record_cell_run(source: str, finished: bool) -> None:
    """Remember, for each followed variable the cell assigns, whether the cell ran to the end.

    So a check after an attempt that crashed says "your cell did not finish" instead of
    grading an older object.
    """
    for variable in _watched:
        if re.search(rf"^\s*{variable}\s*=", source, re.MULTILINE):
            _finished_cells[variable] = finished


def cell_finished(variable: str) -> bool:
    """False when the last cell run that assigns `variable` crashed; True otherwise."""
    return _finished_cells.get(variable, True)


def notebook_namespace():
    """The running notebook's variables (IPython's user_ns), or None outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return None if shell is None else shell.user_ns


def notebook_variable(name: str):
    """The value of `name` in the notebook, or MISSING (also outside a notebook)."""
    namespace = notebook_namespace()
    return MISSING if namespace is None else namespace.get(name, MISSING)
