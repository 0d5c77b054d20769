"""The course's model: a frozen ImageNet MobileNetV2 feature extractor and a small head.

The model takes raw pixels in [0, 255]; its first layer rescales them to [-1, 1],
which is what MobileNetV2 was trained on (the original course divided by 255, a
known flaw). A saved model therefore classifies raw pictures directly.
"""

import os
import sys
from typing import Optional

import keras

from .accelerator import accelerator_scope
from .data import CLASSES, image_size_pair
from .errors import ConfigError, WeightsError, first_line
from .memory import available_memory
from .messages import N_, say

WEIGHTS_DO_NOT_FIT = N_("weights file '{path}' does not fit MobileNetV2 (alpha 1.0, no top): {first}. Use the no-top "
                        "MobileNetV2 1.0 weights (…_1.0_224_no_top.h5).")
SMALLER_BATCH = N_("use --batch-size {fits} or less (the course uses 64)")
SMALLER_IMAGES = N_("use a smaller --image-size (the course uses 192)")
TOO_LITTLE_MEMORY = N_("training at {height}x{width} with {photos} photos per step needs about {needed:.1f} GiB of "
                       "memory, and {available:.1f} GiB is available: {advice}.")
from . import rules
from .records import DEFAULT_IMAGE_SIZE

WEIGHTS_ENV_VARIABLE = "FLOWERS_TL_WEIGHTS"
HEADS = ("flatten", "gap")
# MAX_IMAGE_SIZE (records.py) is the largest square input `train` and `convert` accept: at that size
# one photo's activations take about 0.4 GB while MobileNetV2 trains.
# Bytes one input pixel costs while MobileNetV2 trains (its widest activations, float32, with the
# gradients Keras keeps alive), rounded up: the basis of `check_memory`'s estimate.
TRAINING_BYTES_PER_PIXEL = 400
NO_WEIGHTS = ("none", "random", "")
UNKNOWN_HEAD = N_("head must be one of {heads}, got '{head}'")
TOO_FEW_CLASSES = N_("num_classes must be at least 2, got {num_classes}")
NO_BACKBONE_TO_FINE_TUNE = N_("the model holds no pretrained network (a nested Keras model such as MobileNetV2) "
                              "whose top blocks could be fine-tuned.")
NO_SUCH_BLOCK = N_("from_block={from_block}: '{backbone}' has no block {from_block}; choose one of {first}..{last} "
                   "(13 fine-tunes its top 4 blocks).")
IMAGENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
KERAS_IMAGENET_SIZES = (96, 128, 160, 192, 224)  # the square sizes Keras publishes ImageNet MobileNetV2 files for

NO_WEIGHTS_FILE = N_("weights file '{path}' does not exist. Give --weights imagenet (weights='imagenet' in Python) "
                     "to download them, or the path of a MobileNetV2 no-top .h5 file (--weights, weights= or "
                     "{variable}).")
NO_IMAGENET_DOWNLOAD = N_("could not download the ImageNet MobileNetV2 weights (are you offline?): {first}. "
                          "Remedies: give --weights (weights= in Python) or set {variable} to a local '{local}' (it "
                          "loads at any image size), or copy it into $KERAS_HOME/models/ (default ~/.keras/models/), "
                          "where it is used offline for any size (Keras' own file for this size is '{wanted}').")
LOCAL_224_WEIGHTS = N_("Note: offline, and Keras' '{wanted}' is not in {folder}; using '{local}' (the 224 weights "
                       "load at any image size).")


def resolve_weights(weights: Optional[str] = None) -> Optional[str]:
    """The backbone weights to use: the argument, else $FLOWERS_TL_WEIGHTS, else "imagenet".

    Returns "imagenet", a path to an existing `.h5` file, or None (random init,
    asked for with "none").
    """
    chosen = weights if weights is not None else os.environ.get(WEIGHTS_ENV_VARIABLE, "imagenet")
    if chosen.lower() in NO_WEIGHTS:
        return None
    if chosen == "imagenet":
        return chosen
    chosen = os.path.expanduser(chosen)
    if not os.path.isfile(chosen):
        raise WeightsError(say(NO_WEIGHTS_FILE, path=chosen, variable=WEIGHTS_ENV_VARIABLE))
    return chosen


def imagenet_file(height: int, width: int) -> str:
    """The file Keras looks for in $KERAS_HOME/models/ for ImageNet MobileNetV2 (alpha 1.0, no top) at
    this input size: its own file for the five square sizes it publishes, else the 224 one."""
    rows = height if height == width and height in KERAS_IMAGENET_SIZES else 224
    return IMAGENET_FILE.format(rows=rows)


def _keras_models_folder() -> str:
    """Keras' download cache: $KERAS_HOME/models, or ~/.keras/models."""
    return os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")), "models")


def _local_imagenet_weights(height: int, width: int) -> Optional[str]:
    """Offline, the local 224 file when Keras' own file for this size is not in its cache, else None.

    Keras would look only for its file of this size (`_192_` at 192 px) and fail offline; the 224
    weights load at any input size. Online, Keras downloads the file of this size as usual.
    """
    from . import online

    folder = _keras_models_folder()
    wanted, local = imagenet_file(height, width), os.path.join(folder, imagenet_file(224, 224))
    if os.path.isfile(os.path.join(folder, wanted)) or not os.path.isfile(local) or online.is_online():
        return None
    print(say(LOCAL_224_WEIGHTS, wanted=wanted, folder=folder, local=local), file=sys.stderr)
    return local


def load_backbone(image_size=DEFAULT_IMAGE_SIZE, weights: Optional[str] = None) -> keras.Model:
    """A frozen MobileNetV2 (alpha 1.0, no top) for `image_size` inputs scaled to [-1, 1]."""
    height, width = image_size_pair(rules.image_size(image_size))
    resolved = resolve_weights(weights)
    if resolved == "imagenet":
        resolved = _local_imagenet_weights(height, width) or resolved
    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=(height, width, 3), include_top=False, weights=resolved)
    except Exception as error:  # translate download and file errors into one clear message
        raise _weights_error(resolved, error, (height, width)) from None
    backbone.trainable = False
    return backbone


def check_memory(image_size, photos_per_step: int) -> None:
    """ConfigError when one training step cannot fit in memory.

    An estimate (TRAINING_BYTES_PER_PIXEL per input pixel) against the memory available now,
    so `train --batch-size 100000000 --no-fast` is refused with the largest batch that fits
    instead of aborting with std::bad_alloc. `photos_per_step`: the photos MobileNetV2 sees at
    once (the global batch on photos; the fast path's feature pass uses a small fixed batch).
    The fast path's cached activations need no room here: too big for memory, they go to disk
    (`activation_file`).
    """
    height, width = image_size_pair(image_size)
    per_image = height * width * TRAINING_BYTES_PER_PIXEL
    needed, available = photos_per_step * per_image, available_memory()
    if available is None or needed <= available:
        return
    fits = max(0, available // per_image)
    advice = (say(SMALLER_BATCH, fits=fits) if 0 < fits < photos_per_step else say(SMALLER_IMAGES))
    raise ConfigError(say(TOO_LITTLE_MEMORY, height=height, width=width, photos=photos_per_step,
                          needed=needed / 2**30, available=available / 2**30, advice=advice))


def _weights_error(weights: Optional[str], error: Exception, size) -> WeightsError:
    """The WeightsError for a failed download (naming the file this size needs) or an unfit file."""
    first = first_line(error)
    if weights == "imagenet":
        return WeightsError(say(NO_IMAGENET_DOWNLOAD, first=first, variable=WEIGHTS_ENV_VARIABLE,
                                local=imagenet_file(224, 224), wanted=imagenet_file(*size)))
    return WeightsError(say(WEIGHTS_DO_NOT_FIT, path=weights, first=first))


@keras.saving.register_keras_serializable(package="flowers_tl")
class FeatureSquareRoot(keras.layers.Layer):
    """The square root of each feature (MobileNetV2's are >= 0, after its last ReLU6).

    It evens out a few very strong features against many weak ones, which helps a
    linear classifier on 46,080 Flatten inputs generalise (measured: +0.011 accuracy).
    A named layer, not a Lambda, so a saved model loads anywhere.
    """

    def call(self, features):
        return keras.ops.sqrt(keras.ops.maximum(features, 0.0) + 1e-6)


@keras.saving.register_keras_serializable(package="flowers_tl")
class ClassProbabilities(keras.layers.Dense):
    """The softmax layer of the course's head, which also carries the class names.

    The names must travel with the model: a model trained on a teacher's own photo
    folders must name those classes in `predict` and `evaluate`, not the course's flowers.
    Kept in the layer's config, they are written into the `.keras` file and restored
    by `keras.saving.load_model` on every backend (TensorFlow and JAX alike), with no side
    file to lose. A Dense subclass, so the layer is still "a Dense softmax" to the exercise
    checks and to `frozen.FrozenPart`, and a model saved before it simply has a plain Dense
    (`class_names_of` then answers None).
    """

    def __init__(self, units, class_names=(), trained_on=(), validated_on=(), **kwargs):
        super().__init__(units, **kwargs)
        self.class_names = [str(name) for name in class_names]
        self.trained_on = [str(shard) for shard in trained_on]
        self.validated_on = [str(shard) for shard in validated_on]

    def get_config(self):
        return {**super().get_config(), "class_names": list(self.class_names),
                "trained_on": list(self.trained_on), "validated_on": list(self.validated_on)}


def class_names_of(model: keras.Model) -> Optional[list]:
    """The class names a model carries (its ClassProbabilities layer), or None for other models."""
    for layer in reversed(model.layers):
        if isinstance(layer, ClassProbabilities) and len(layer.class_names) == layer.units:
            return list(layer.class_names)
    return None


def record_shards(model: keras.Model, split) -> None:
    """Make `model` carry the shards it trains and validates on (`data.shard_ids`), as it carries its
    class names, so `evaluate` can tell the photos it learned from those it never saw."""
    from .data import shard_ids

    for layer in model.layers:
        if isinstance(layer, ClassProbabilities):
            layer.trained_on = shard_ids(split.training_shards)
            layer.validated_on = shard_ids(split.validation_shards)


def shards_of(model: keras.Model) -> Optional[tuple]:
    """(training shard ids, validation shard ids) a model carries, or None (saved without them)."""
    for layer in reversed(model.layers):
        if isinstance(layer, ClassProbabilities) and layer.trained_on:
            return list(layer.trained_on), list(layer.validated_on)
    return None


def classification_head(head: str, num_classes: int, dropout: float = 0.0,
                        feature_flip: bool = False, square_root: bool = False,
                        class_names=None) -> list:
    """The layers after the backbone: Flatten (course) or GlobalAveragePooling, then softmax.

    `feature_flip` mirrors the backbone's feature maps left-right at random while
    training, a nearly free stand-in for flipping the photos; `dropout` drops
    features before the classifier. Both are inactive at inference.
    `square_root` applies `FeatureSquareRoot` to the features first. The last layer
    carries `class_names` (default: the course's CLASSES when there are five classes).
    """
    if head not in HEADS:
        raise ConfigError(say(UNKNOWN_HEAD, heads=HEADS, head=head))
    layers = [FeatureSquareRoot(name="feature_square_root")] if square_root else []
    if feature_flip:
        layers.append(keras.layers.RandomFlip("horizontal", name="feature_flip"))
    layers.append(keras.layers.Flatten(name="flatten") if head == "flatten"
                  else keras.layers.GlobalAveragePooling2D(name="global_average_pooling"))
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    # float32 even under a mixed_bfloat16 policy (TPU): accurate probabilities and loss.
    if class_names is None:
        class_names = CLASSES if num_classes == len(CLASSES) else ()
    layers.append(ClassProbabilities(num_classes, class_names=class_names, activation="softmax",
                                     dtype="float32", name="flower_probabilities"))
    return layers


def build_model(image_size=DEFAULT_IMAGE_SIZE, num_classes: int = len(CLASSES), head: str = "flatten",
                weights: Optional[str] = None, dropout: float = 0.5,
                feature_flip: bool = True, square_root: bool = False,
                accelerator=None, class_names=None) -> keras.Sequential:
    """Raw pixels -> [-1, 1] -> frozen MobileNetV2 -> head -> class probabilities.

    The defaults (feature flips, dropout 0.5) regularise the Flatten head, which
    otherwise overfits its 46,080 inputs per image; see the README's Benchmark section.
    Build it inside `accelerator.scope()` (done for you when `accelerator` is given).
    `class_names` (e.g. `data.class_names(shards)`) sets `num_classes` and travels in the saved model.
    """
    if class_names is not None:
        num_classes = len(class_names)
    if num_classes < 2:
        raise ConfigError(say(TOO_FEW_CLASSES, num_classes=num_classes))
    height, width = image_size_pair(image_size)
    with accelerator_scope(accelerator):
        backbone = load_backbone((height, width), weights)
        model = keras.Sequential(
            [keras.Input(shape=(height, width, 3), name="pixels_0_255"),
             keras.layers.Rescaling(1 / 127.5, offset=-1, name="pixels_to_minus1_1"),
             backbone,
             *classification_head(head, num_classes, dropout, feature_flip, square_root, class_names)],
            name=f"mobilenet_v2_{head}")
    return model


def find_backbone(model: keras.Model) -> keras.Model:
    """The pretrained network inside `model`: its first layer that is itself a Keras model."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ConfigError(say(NO_BACKBONE_TO_FINE_TUNE))


def unfreeze_top(model: keras.Model, from_block: int) -> keras.Model:
    """Make MobileNetV2's blocks `from_block`..16 and its last 1x1 convolution trainable.

    The lower blocks stay frozen (general edges and textures need no change), and so
    does every BatchNormalization layer: trainable, it would replace its ImageNet
    statistics with those of small flower batches and undo much of what was learned.
    """
    backbone = find_backbone(model)
    names = [layer.name for layer in backbone.layers]
    first = next((index for index, name in enumerate(names) if name.startswith(f"block_{from_block}_")),
                 None)
    if first is None:
        blocks = sorted({int(name.split("_")[1]) for name in names if name.startswith("block_")})
        raise ConfigError(say(NO_SUCH_BLOCK, from_block=from_block, backbone=backbone.name, first=blocks[0],
                              last=blocks[-1]))
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return model


def compile_model(model: keras.Model, learning_rate=3e-4, accelerator=None) -> keras.Model:
    """Adam, sparse categorical cross-entropy (integer labels) and accuracy, as the course does.

    With an `accelerator`, its steps per execution are used (50 on a TPU, see
    `accelerator.training_settings`).
    """
    from .accelerator import training_settings

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=training_settings(accelerator).steps_per_execution)
    return model

