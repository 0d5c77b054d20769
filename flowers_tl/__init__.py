"""flowers_tl: the helper package of the course "Your first Keras model, with transfer learning".

The notebooks import it as `import flowers_tl as ftl`. One module per concern:
`records`, `rules`, `accelerator`, `data`, `sources`, `reading`, `pictures`, `model`, `frozen`,
`training`, `plots`, `explain`, `exercises`, `pace`, and for the last chapter `photo_checks` and
`own_photos`; the command line and what only it needs (the converter, file writing, cluster jobs)
are the wing `flowers_tl.tool` (README: "How the package is laid out"). The names below are the
ones the course uses.

Importing the package changes nothing (no environment variable, warning filter, import hook
or notebook handler) and loads nothing heavy: a notebook asks for its set-up in one visible
call, `ftl.setup_notebook()`. Each name is imported from its module on first use
(`ftl.train`, `ftl.data`...), so `flowers-tl --help` answers without TensorFlow or matplotlib.
"""

import importlib

from .errors import ConfigError, DataError, FlowersTLError, OutputExistsError, WeightsError
from .messages import N_, say, set_language
from .records import CLASSES

NO_ATTRIBUTE = N_("module 'flowers_tl' has no attribute '{name}'")

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)

_NAMES = {  # name: the module that defines it, imported on first use
    "Accelerator": "accelerator", "detect_accelerator": "accelerator",
    "DataSplit": "data", "data_pattern": "data", "get_training_dataset": "data",
    "get_validation_dataset": "data", "images_and_labels": "data", "list_shards": "data",
    "load_dataset": "data",
    "find_shards": "sources", "split_shards": "sources",
    "load_picture": "pictures",
    "build_model": "model", "compile_model": "model", "load_backbone": "model",
    "find_backbone": "model", "resolve_weights": "model", "unfreeze_top": "model",
    "display_9_images_from_dataset": "plots", "display_9_images_with_predictions": "plots",
    "display_confusion_matrix": "plots", "display_training_curves": "plots",
    "display_9_images_with_heatmaps": "plots", "display_picture_prediction": "plots",
    "display_top_losses": "plots", "overlay_heatmap": "plots",
    "display_confusion_counts": "plots", "display_photos_per_class": "plots",
    "check_photos": "photo_checks", "convert_folder": "tool.convert",
    "explain_predictions": "explain", "heatmap": "explain", "top_losses": "explain",
    "TrainingResult": "training", "evaluate": "training", "fine_tune": "training", "train": "training",
    "____": "exercises", "CoursePace": "pace", "course_pace": "pace",
    "setup_notebook": "notebook_setup", "validation_accuracy": "scores", "class_name": "messages",
}
_MODULES = ("accelerator", "attempts", "data", "errors", "exercises", "explain", "fitting", "frozen",
            "learner_errors", "messages", "model", "notebook_setup", "online", "own_photos", "pace", "photo_checks",
            "pictures", "plots", "quiet", "reading", "records", "rules", "scores", "solutions", "sources", "training",
            "tool")


def __getattr__(name):
    """Import a course name's module (or a submodule) on first use, then keep the name."""
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(say(NO_ATTRIBUTE, name=name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_MODULES))
