"""`ftl.setup_notebook()`: the one visible call that prepares a notebook for the course.

Importing flowers_tl changes nothing. In the notebook's imports cell, before Keras is imported,
`ftl.setup_notebook(language)` does, and says in one line that it did:
* hides TensorFlow's start-up lines (`quiet`: TF_CPP_MIN_LOG_LEVEL unless the user set it, and the
  lines written while its libraries load), and Keras' warning about `shuffle` on a tf.data dataset;
* shows known mistakes as one sentence, the full traceback one `%tb` away (`learner_errors`);
* chooses the language of every message and plot (`messages.set_language`).
As learntools' one visible `binder.bind(globals())`, in the spirit of Kaggle's exercises.
"""

from . import __version__
from .learner_errors import install_notebook_hooks
from .messages import N_, say, set_language
from .quiet import ignore_spurious_keras_warnings, install_import_hook, set_defaults

SET_UP = N_("flowers_tl {version}: TensorFlow's start-up lines hidden, known mistakes shown in one sentence "
            "(%tb shows the full error), messages in English.")
NOT_A_NOTEBOOK = N_("flowers_tl {version}: TensorFlow's start-up lines hidden, messages in English (not in a "
                    "notebook, so errors keep their usual tracebacks).")


def setup_notebook(language: str = "en") -> None:
    """Quiet TensorFlow's start-up, install the short error messages, choose the language; say so."""
    set_language(language)
    set_defaults()
    install_import_hook()
    ignore_spurious_keras_warnings()
    in_notebook = install_notebook_hooks()
    print(say(SET_UP if in_notebook else NOT_A_NOTEBOOK, version=__version__))
