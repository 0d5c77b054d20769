"""Explaining predictions: where the model looks (Grad-CAM) and which photos it gets most wrong.

Grad-CAM (Selvaraju et al., 2017; the keras-io example "Grad-CAM class activation
visualization") weighs the last convolutional feature map by how much the class score
grows with it, and keeps the positive sum over channels: a coarse map of the places that
made the model say that class. The gradient is kept per position, not averaged over the
map first (the HiResCAM form, Draelos & Carin 2020). For a GlobalAveragePooling head the
two are the same (its gradient is equal at every position); for the course's Flatten head,
which gives every position its own weights, the averaged form mixes them up: on 29 photos
its maps put more than the central quarter's share of their heat there for 45 % of them,
the per-position form's for 83 % (192 px, tests/test_explain.py). For the course's models
the feature map is the output of MobileNetV2 (its `out_relu` layer: 6x6 for 192 px photos), so the model is
split there into two models made of its own layers, "photo -> feature map" and
"feature map -> class scores", and the gradient is taken between them. Everything is
written with `keras.ops`; only the gradient itself picks TensorFlow's `GradientTape`
or `jax.grad`, by the Keras backend.

`top_losses` finds the validation photos with the highest cross-entropy loss: the
model's most confident mistakes, and the labels that may be wrong.
"""

import dataclasses
from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np

from . import data as flowers_data, rules
from .errors import ConfigError
from .frozen import predict_batch
from .messages import N_, say
from .model import class_names_of, find_backbone
from .scores import check_probabilities

MODEL_OUTPUTS = N_("The model's outputs")
NO_BACKBONE_TO_EXPLAIN = N_("model '{model}' holds no pretrained network (a nested Keras model such as MobileNetV2) "
                            "whose feature map could be explained: explain a model made by ftl.build_model or the "
                            "course's notebook (Rescaling, MobileNetV2, Flatten or GlobalAveragePooling2D, Dense).")
NOT_A_FEATURE_MAP = N_("the pretrained network '{backbone}' outputs shape {shape}, not a feature map "
                       "[batch, height, width, channels]: build it with include_top=False.")
NO_HEAD_TO_EXPLAIN = N_("model '{model}' ends with '{backbone}': it has no classification head to explain "
                        "(add Flatten or GlobalAveragePooling2D and a Dense softmax layer).")
GRADIENT_BACKEND = N_("Grad-CAM needs the Keras 'tensorflow' or 'jax' backend, not '{backend}': "
                      "set KERAS_BACKEND=tensorflow (or jax) before importing Keras.")
PHOTOS_DO_NOT_FIT = N_("photos of shape {shape} do not fit the model, which takes [N, {sizes}]: "
                       "load them at the model's image size (ftl.load_picture(path, size)).")
BATCH_SIZE = 32  # photos per gradient pass: bounded memory, few traced shapes
# The smallest probability a loss is computed from. Keras clips at 1e-7 (loss 16.1), which ties every
# photo a badly trained model is sure about; float32's smallest normal number (loss 87.3) keeps them ranked.
SMALLEST_PROBABILITY = float(np.finfo(np.float32).tiny)


@dataclasses.dataclass
class Explanation:
    """What the model says about some photos and where it looked to say it.

    `probabilities` [N, classes]; `predicted` [N] class indices; `explained` [N] the
    class each heatmap explains (the predicted one unless asked otherwise);
    `heatmaps` [N, H, W] float32 in [0, 1], the size of the photos.
    """

    probabilities: np.ndarray
    predicted: np.ndarray
    explained: np.ndarray
    heatmaps: np.ndarray


@dataclasses.dataclass
class TopLoss:
    """One validation photo the model gets badly wrong (or whose label is wrong).

    `probability` is the model's probability for its `predicted` class,
    `true_probability` the one for the label; `loss` = -log(true_probability).
    `index` is the photo's position in the validation set (file order);
    `heatmap` (predicted class) is None unless asked for.
    """

    photo: np.ndarray
    true_class: int
    predicted_class: int
    probability: float
    true_probability: float
    loss: float
    index: int
    heatmap: Optional[np.ndarray] = None


def split_at_feature_map(model: keras.Model) -> Tuple[keras.Model, keras.Model, keras.layers.Layer]:
    """`model` as "photo -> last feature map", "feature map -> head features", and its last layer.

    The feature map is the pretrained backbone's output (MobileNetV2's last
    convolutional block). The last layer (Dense with softmax in the course) is kept
    apart so that the class score can be taken before the softmax (`class_scores`).
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    try:
        backbone = find_backbone(model)
    except ConfigError:
        raise ConfigError(say(NO_BACKBONE_TO_EXPLAIN, model=model.name)) from None
    if len(backbone.output.shape) != 4:
        raise ConfigError(say(NOT_A_FEATURE_MAP, backbone=backbone.name, shape=backbone.output.shape))
    cut = layers.index(backbone) + 1
    if cut == len(layers):
        raise ConfigError(say(NO_HEAD_TO_EXPLAIN, model=model.name, backbone=backbone.name))
    to_features = keras.Sequential([keras.Input(model.input_shape[1:]), *layers[:cut]],
                                   name=f"{model.name}_to_feature_map")
    head = keras.Sequential([keras.Input(backbone.output.shape[1:]), *layers[cut:-1]],
                            name=f"{model.name}_head")
    return to_features, head, layers[-1]


def class_scores(head: keras.Model, last: keras.layers.Layer, feature_maps):
    """The class scores the last layer computes from `feature_maps`, before its softmax.

    Grad-CAM differentiates the score before the softmax: a probability near 1 has
    a gradient near 0 (the softmax saturates), which would leave an empty heatmap
    exactly for the most confident predictions.
    """
    inputs = head(feature_maps, training=False)
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        scores = keras.ops.matmul(keras.ops.cast(inputs, "float32"), keras.ops.cast(last.kernel, "float32"))
        return scores + last.bias if last.use_bias else scores
    return keras.ops.cast(last(inputs, training=False), "float32")


def gradient(function, inputs):
    """The gradient of the scalar `function(inputs)` with respect to `inputs`, on any Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = function(inputs)
        return tape.gradient(value, inputs)
    if backend == "jax":
        import jax

        return jax.grad(function)(inputs)
    raise ConfigError(say(GRADIENT_BACKEND, backend=backend))


def explain_predictions(model: keras.Model, photos, classes: Optional[Sequence[int]] = None) -> Explanation:
    """Predictions and Grad-CAM heatmaps for a batch of photos (pixels [0, 255], [N, H, W, 3]).

    Each heatmap explains `classes[i]` (default: the predicted class) for photo i.
    """
    photos = np.asarray(photos, dtype=np.float32)
    if photos.ndim != 4 or photos.shape[1:] != tuple(model.input_shape[1:]):
        raise ConfigError(say(PHOTOS_DO_NOT_FIT, shape=photos.shape,
                              sizes=", ".join(str(size) for size in model.input_shape[1:])))
    to_features, head, last = split_at_feature_map(model)
    parts = [_explain_batch(to_features, head, last, photos[start:start + BATCH_SIZE],
                            None if classes is None else np.asarray(classes)[start:start + BATCH_SIZE])
             for start in range(0, len(photos), BATCH_SIZE)]
    return Explanation(*(np.concatenate([part[index] for part in parts]) for index in range(4)))


def heatmap(model: keras.Model, photo, class_index: Optional[int] = None) -> np.ndarray:
    """The Grad-CAM heatmap [H, W] (float32, 0 to 1) of one photo, for its predicted class or `class_index`."""
    classes = None if class_index is None else [class_index]
    return explain_predictions(model, np.asarray(photo)[None], classes).heatmaps[0]


def _explain_batch(to_features, head, last, photos, classes):
    """(probabilities, predicted, explained classes, heatmaps) of at most BATCH_SIZE photos.

    One gradient pass for the whole batch: each photo's score depends on that photo only
    (no layer mixes photos at inference), so the gradient of their sum is each one's own.
    """
    feature_maps = keras.ops.cast(to_features(photos, training=False), "float32")
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.cast(last(head(feature_maps, training=False), training=False), "float32"))
    check_probabilities(probabilities, MODEL_OUTPUTS)  # a model without softmax: "-200 %" otherwise
    if classes is None:
        classes = probabilities.argmax(axis=-1)
    chosen = keras.ops.one_hot(keras.ops.convert_to_tensor(classes, "int32"), probabilities.shape[-1])
    grads = gradient(lambda maps: keras.ops.sum(class_scores(head, last, maps) * chosen), feature_maps)
    maps = keras.ops.relu(keras.ops.sum(grads * feature_maps, axis=-1, keepdims=True))
    peak = keras.ops.max(maps, axis=(1, 2, 3), keepdims=True)
    maps = keras.ops.where(peak > 0, maps / keras.ops.maximum(peak, 1e-12), 0.0)
    resized = keras.ops.image.resize(maps, photos.shape[1:3], interpolation="bilinear")
    heatmaps = np.clip(keras.ops.convert_to_numpy(resized)[..., 0], 0.0, 1.0).astype(np.float32)
    return probabilities, probabilities.argmax(axis=-1), np.asarray(classes), heatmaps


def top_losses(model: keras.Model, dataset_or_split, count: int = 9,
               with_heatmaps: bool = False) -> List[TopLoss]:
    """The `count` photos with the highest cross-entropy loss, highest first.

    `dataset_or_split`: a `DataSplit` (its validation shards), a list of shard
    paths, or a dataset of (photo, class) pairs, batched or not. Each photo's loss
    is -log(probability of its true class): a confident mistake costs most. With
    `with_heatmaps`, each gets the heatmap of its predicted class.
    """
    count = rules.at_least(count, "count")
    worst: List[TopLoss] = []
    seen = 0
    for photos, labels in _photo_batches(model, dataset_or_split):
        probabilities = check_probabilities(predict_batch(model, photos, BATCH_SIZE), MODEL_OUTPUTS)
        true_probability = probabilities[np.arange(len(labels)), labels]
        losses = -np.log(np.clip(true_probability, SMALLEST_PROBABILITY, 1.0))
        for index in np.argsort(-losses, kind="stable")[:count]:
            guess = int(probabilities[index].argmax())
            worst.append(TopLoss(photos[index], int(labels[index]), guess, float(probabilities[index, guess]),
                                 float(true_probability[index]), float(losses[index]), seen + int(index)))
        seen += len(labels)
        worst = sorted(worst, key=lambda item: -item.loss)[:count]
    if with_heatmaps and worst:
        maps = explain_predictions(model, np.stack([item.photo for item in worst])).heatmaps
        for item, heat in zip(worst, maps):
            item.heatmap = heat
    return worst


def _photo_batches(model: keras.Model, dataset_or_split):
    """(photos float32 [B, H, W, 3], labels int [B]) batches of at most BATCH_SIZE."""
    if isinstance(dataset_or_split, flowers_data.DataSplit):
        dataset_or_split = dataset_or_split.validation_shards
    if isinstance(dataset_or_split, (list, tuple, str)):
        shards = [dataset_or_split] if isinstance(dataset_or_split, str) else list(dataset_or_split)
        image_size = tuple(model.input_shape[1:3])
        with flowers_data.checking_classes(class_names_of(model)):  # a learner's own classes, however many
            dataset = flowers_data.get_validation_dataset(shards, image_size, batch_size=BATCH_SIZE)
        with flowers_data.reading(shards, image_size):
            for photos, labels in dataset.as_numpy_iterator():
                yield photos.astype(np.float32), labels.astype(np.int64)
        return
    batched = dataset_or_split.element_spec[0].shape.rank == 4
    dataset = dataset_or_split.unbatch() if batched else dataset_or_split
    for photos, labels in dataset.batch(BATCH_SIZE).as_numpy_iterator():
        yield photos.astype(np.float32), labels.astype(np.int64)
