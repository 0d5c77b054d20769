"""flowers_tl: the helper package of the course "Your first Keras model, with transfer learning".

The notebooks import it as `import flowers_tl as ftl`. One module per concern:
`accelerator`, `data`, `pictures`, `convert`, `model`, `training`, `plots`,
`exercises` and `cli`; the names below are the ones the course uses.
"""

__version__ = "0.1.0"

from . import quiet as _quiet  # first: TensorFlow's start-up lines are silenced before it loads

_quiet.import_tensorflow()

from .accelerator import Accelerator, detect_accelerator
from .data import (CLASSES, DataSplit, data_pattern, get_training_dataset, get_validation_dataset,
                   images_and_labels, list_shards, load_dataset, split_shards)
from .errors import ConfigError, DataError, FlowersTLError, OutputExistsError, WeightsError
from .pictures import load_picture
from .model import build_model, compile_model, find_backbone, load_backbone, resolve_weights, unfreeze_top
from .plots import (display_9_images_from_dataset, display_9_images_with_predictions,
                    display_confusion_matrix, display_training_curves)
from .training import TrainingResult, evaluate, fine_tune, train
from .exercises import ____  # also makes ftl.exercises available
from .pace import CoursePace, course_pace
from .messages import set_language
from .explain import explain_predictions, heatmap, top_losses
from .plots import (display_9_images_with_heatmaps, display_picture_prediction, display_top_losses,
                    overlay_heatmap)
