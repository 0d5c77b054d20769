"""The course's exercises, checked in place, and the pace the notebooks run at.

Each WORK REQUIRED cell of the playground notebook has an object here, in the
spirit of Kaggle's learntools:

    transfer_model = ____                                              # the learner's cell
    ftl.exercises.transfer_model.check(transfer_model, accelerator)   # one targeted sentence
    model = ftl.exercises.transfer_model.or_solution(transfer_model, accelerator, IMAGE_SIZE)
    ftl.exercises.transfer_model.hint()
    ftl.exercises.transfer_model.solution()

Each exercise has its own variable (`first_model`, `transfer_model`) that `check()` only
reads; `or_solution()` hands the course's solution to another name (`model`), so a second
check never grades the solution. In a notebook, `check()` also knows whether the learner's
cell (the last cell run that assigns the exercise's variable) finished: after an error it says
NOT_FINISHED instead of grading an older object. A model whose check failed is refused by
`ftl.train` (see `refuse_untrainable`), with the check's own sentence.

`check()` inspects the real Keras model the learner built (layers, frozen
weights, what the first layers do to pixels, compile settings, distribution
strategy) and prints one sentence; the sentences are the English constants below,
so tests can assert them, and flowers_tl/messages.py holds their Russian
(`ftl.set_language("ru")`).

`____` is the blank the playground leaves for the learner. It is a harmless
object: a cell such as `model = ____` runs, and `check()` answers "not
attempted" instead of the notebook crashing. Using a blank where Python needs a
real value (`if ____:`) raises `BlankError`, which says to fill it in.

`course_pace()` reads FLOWERS_TL_FAST: the full course, or the quick mode the
automated tests run the notebooks in (one short epoch on a few shards).
"""

import dataclasses
import os
import re
import textwrap
import weakref
from typing import Optional

import numpy as np

from .data import CLASSES, DataSplit, count_images
from .errors import FlowersTLError
from .messages import say, translate

FAST_ENV_VARIABLE = "FLOWERS_TL_FAST"

# --- What check() says (one sentence each) ---------------------------------------------------
CORRECT = "Correct: {what} is exactly what the course needs."
NOT_ATTEMPTED = "Not attempted yet: replace every ____ in the cell above, run it, then run this check again."
NOT_FINISHED = "Your cell did not finish: fix the error above, run the cell again, then run this check again."
NOT_A_MODEL = "`{variable}` should be a Keras model (keras.Sequential([...])), but it is a {kind}."
NO_BACKBONE = ("No pretrained MobileNetV2 inside the model: put `pretrained_model` in the "
               "keras.Sequential list, between the rescaling layer and the Flatten layer.")
INCLUDE_TOP = ("The MobileNetV2 still has its ImageNet classifier on top: create it with "
               "include_top=False so it outputs feature maps, not 1000 ImageNet classes.")
BACKBONE_TRAINABLE = ("The pretrained MobileNetV2 is still trainable: set "
                      "pretrained_model.trainable = False so training keeps its ImageNet weights.")
NOT_RESCALED = ("The model does not turn pixels [0, 255] into [-1, 1] before MobileNetV2 "
                "(0 became {low:.3g} and 255 became {high:.3g}): add "
                "keras.layers.Rescaling(1 / 127.5, offset=-1) before pretrained_model.")
MISSING_FLATTEN = ("The output has shape {shape}, not one row of class probabilities per image: "
                   "put a keras.layers.Flatten() (or a GlobalAveragePooling2D) before the Dense layer.")
LAST_NOT_DENSE = "The last layer is a {kind}: end the model with keras.layers.Dense(len(CLASSES), activation='softmax')."
WRONG_UNITS = ("The last Dense layer has {units} units, but there are {classes} classes: "
               "use keras.layers.Dense({classes}, ...) so there is one probability per class.")
WRONG_ACTIVATION = ("The last Dense layer's activation is '{activation}': use activation='softmax' "
                    "so the outputs are probabilities that add up to 1.")
NOT_COMPILED = ("The model is not compiled yet: call model.compile(optimizer='adam', "
                "loss='sparse_categorical_crossentropy', metrics=['accuracy']).")
LOSS_NOT_SPARSE = ("The loss '{loss}' expects one-hot labels, but the dataset gives integer classes (0 to 4): "
                   "use loss='sparse_categorical_crossentropy'.")
WRONG_LOSS = "The loss '{loss}' is not a classification loss: use loss='sparse_categorical_crossentropy'."
LOSS_FROM_LOGITS = ("The loss uses from_logits=True, but the last layer already applies softmax: "
                    "use loss='sparse_categorical_crossentropy' (from_logits=False).")
NO_ACCURACY = "The model has no accuracy metric: compile it with metrics=['accuracy'] to see how often it is right."
USING_SOLUTION = ("Using the course's solution for now, so that the next cells run; "
                  "finish the exercise to train your own model.")
REFUSED_BY_CHECK = ("This model failed its check, so it is not trained: {problem} (To train it anyway: "
                    "ftl.train(..., ignore_check=True).)")
NOT_A_HISTORY = ("`{variable}` should be what model.fit returns (a keras.callbacks.History), but it is a {kind}: "
                 "write {variable} = model.fit(...).")
WRONG_EPOCHS = ("The model trained for {trained} epoch(s), not {epochs}: pass epochs=PACE.baseline_epochs "
                "to model.fit.")
WRONG_STEPS = ("An epoch had {steps} steps: the training dataset repeats forever, so pass "
               "steps_per_epoch=steps_per_epoch to model.fit.")
NO_VALIDATION = ("No validation accuracy in the history: pass validation_data=validation_dataset to model.fit, "
                 "to see how the model does on photos it never trains on.")
HINT = "Hint: {hint}"
SOLUTION = "Solution:\n{code}"
PACE = "Pace: {mode}, {epochs} epoch(s) of training"
QUICK_MODE = "quick mode ({variable}=1)"
FULL_COURSE = "full course"
NOT_IN_SCOPE = ("The model was not built inside the accelerator's scope, so it would not train on all "
                "{replicas} replicas: create pretrained_model and the Sequential model in `with accelerator.scope():`.")


class BlankError(FlowersTLError):
    """A `____` blank was used where a real value is needed."""


class CheckFailedError(FlowersTLError):
    """`ftl.train` was given a model whose exercise check failed (or a loss the course's labels cannot feed)."""


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
        raise BlankError("a ____ blank is used as True/False: replace it with a value first.")

    def __index__(self):
        raise BlankError("a ____ blank is used as a number: replace it with a value first.")


____ = Blank()


def is_blank(value) -> bool:
    """True for the `____` placeholder (the learner has not filled this in yet)."""
    return isinstance(value, Blank)


# --- Inspecting a model ----------------------------------------------------------------------

def _name(spec) -> str:
    """'sparsecategoricalcrossentropy' for 'sparse_categorical_crossentropy', a Keras class or
    function, or their serialized form (get_compile_config), so spellings compare equal."""
    if isinstance(spec, dict):
        spec = spec.get("config") if spec.get("class_name") == "function" else spec.get("class_name")
    elif not isinstance(spec, str):
        spec = getattr(spec, "__name__", type(spec).__name__)
    return re.sub(r"[^a-z]", "", str(spec).lower())


def _from_logits(loss_spec) -> bool:
    return isinstance(loss_spec, dict) and bool((loss_spec.get("config") or {}).get("from_logits"))


def _metric_names(metrics) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = list(metrics.values())
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    names = []
    for metric in metrics:
        names.extend(_metric_names(metric) if isinstance(metric, (list, tuple)) else [_name(metric)])
    return names


ACCURACY_NAMES = {"accuracy", "acc", "sparsecategoricalaccuracy"}
SPARSE_LOSS = "sparsecategoricalcrossentropy"
ONE_HOT_LOSSES = {"categoricalcrossentropy", "categoricalfocalcrossentropy"}
CLASSIFICATION_LOSSES = {SPARSE_LOSS} | ONE_HOT_LOSSES


def find_backbone(model):
    """The index and layer of the first nested Keras model (the pretrained network), or (None, None)."""
    import keras

    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.Model):
            return index, layer
    return None, None


def _has_imagenet_top(backbone) -> bool:
    return len(backbone.output_shape) == 2 or any(layer.name == "predictions" for layer in backbone.layers)


def _pixel_range_after(layers, input_shape):
    """What `layers` (applied in order) turn pixel values 0 and 255 into."""
    height, width = input_shape[1], input_shape[2]
    pixels = np.zeros((1, height, width, 3), dtype="float32")
    pixels[:, : height // 2] = 255.0
    outputs = pixels
    for layer in layers:
        outputs = layer(outputs)
    outputs = np.asarray(outputs)
    return float(outputs[0, -1].mean()), float(outputs[0, 0].mean())


def _head_problem(model, classes: int) -> Optional[str]:
    """Flatten/pooling before the last Dense, its units and activation."""
    import keras

    if len(model.output_shape) != 2:
        return say(MISSING_FLATTEN, shape=tuple(model.output_shape))
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        return say(LAST_NOT_DENSE, kind=type(last).__name__)
    if last.units != classes:
        return say(WRONG_UNITS, units=last.units, classes=classes)
    activation = getattr(last.activation, "__name__", str(last.activation))
    if activation != "softmax":
        return say(WRONG_ACTIVATION, activation=activation)
    return None


def _compile_problem(model) -> Optional[str]:
    """Compiled at all, a loss for integer labels, an accuracy metric."""
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        return say(NOT_COMPILED)
    config = model.get_compile_config() or {}
    loss = _name(config.get("loss"))
    if loss in ONE_HOT_LOSSES:
        return say(LOSS_NOT_SPARSE, loss=loss_label(config.get("loss")))
    if loss not in CLASSIFICATION_LOSSES:
        return say(WRONG_LOSS, loss=loss_label(config.get("loss")))
    if _from_logits(config.get("loss")):
        return say(LOSS_FROM_LOGITS)
    if not ACCURACY_NAMES & set(_metric_names(config.get("metrics"))):
        return say(NO_ACCURACY)
    return None


def loss_label(spec) -> str:
    """A readable name for a loss as stored in the compile config."""
    if isinstance(spec, dict):
        return str(spec.get("config") if spec.get("class_name") == "function" else spec.get("class_name"))
    return getattr(spec, "__name__", str(spec))


def _scope_problem(model, accelerator) -> Optional[str]:
    """With a real distribution strategy (TF backend), the model and all its variables must belong to it."""
    strategy = getattr(accelerator, "strategy", None)
    if strategy is None:
        return None
    import tensorflow as tf

    if strategy is tf.distribute.get_strategy():  # the default strategy: nothing to distribute
        return None
    in_scope = getattr(model, "_distribute_strategy", None) is strategy and all(
        strategy.extended.variable_created_in_scope(variable) for variable in _tf_variables(model))
    return None if in_scope else say(NOT_IN_SCOPE, replicas=accelerator.replicas)


def _tf_variables(model):
    """The tf.Variables behind the model's Keras variables."""
    return [getattr(variable, "value", variable) for variable in model.weights]


# --- Exercises -------------------------------------------------------------------------------

_finished_cells = {}  # exercise variable -> did the last notebook cell that assigned it finish?
_failed_checks = weakref.WeakKeyDictionary()  # model -> the sentence of its failed check


def record_cell_run(source: str, finished: bool) -> None:
    """Remember, for each exercise variable the cell assigns, whether the cell ran to the end.

    Called by the notebook hook of learner_errors after every cell; check() reads it, so an
    attempt that crashed is reported as NOT_FINISHED instead of grading an older object.
    """
    for exercise in EXERCISES.values():
        if re.search(rf"^\s*{exercise.variable}\s*=", source, re.MULTILINE):
            _finished_cells[exercise.variable] = finished


def refuse_untrainable(model) -> None:
    """Raise CheckFailedError for a model whose last check failed, or compiled for one-hot labels.

    The course's datasets give integer labels, so a one-hot loss can only end in Keras' long
    shape error; and a model that failed its check would train slowly or to a poor accuracy.
    """
    problem = _failed_checks.get(model)
    if problem is None and getattr(model, "compiled", False):
        loss = (model.get_compile_config() or {}).get("loss")
        if _name(loss) in ONE_HOT_LOSSES:
            problem = say(LOSS_NOT_SPARSE, loss=loss_label(loss))
    if problem is not None:
        raise CheckFailedError(say(REFUSED_BY_CHECK, problem=problem))


@dataclasses.dataclass
class Exercise:
    """What every WORK REQUIRED cell has: its code, its hint and the variable its check reads.

    Attributes:
        name: the attribute name in this module (used in the check call).
        variable: the notebook variable the learner's cell assigns and check() reads.
        what: what the learner builds, for the "Correct" sentence (English; translated when printed).
        stub: the playground's code, with `____` blanks.
        solution_code: the solution notebook's code, word for word.
        hint_text: a nudge that gives less away than the solution (English; translated when printed).
    """

    name: str
    variable: str
    what: str
    stub: str
    solution_code: str
    hint_text: str

    def hint(self) -> None:
        """Print a hint."""
        print(say(HINT, hint=translate(self.hint_text)))

    def solution(self) -> None:
        """Print the course's solution."""
        print(say(SOLUTION, code=comments_translated(self.solution_code)))


@dataclasses.dataclass
class ModelExercise(Exercise):
    """One WORK REQUIRED cell that builds and compiles a model in its own variable.

    `needs_backbone`: the model must contain the frozen pretrained MobileNetV2.
    """

    needs_backbone: bool

    def evaluate(self, model, accelerator=None, classes: int = len(CLASSES)) -> str:
        """The one sentence `check()` prints (one of this module's message constants, translated)."""
        import keras

        if is_blank(model):
            return say(NOT_ATTEMPTED)
        if not isinstance(model, keras.Model):
            return say(NOT_A_MODEL, variable=self.variable, kind=type(model).__name__)
        problem = (self._backbone_problem(model) if self.needs_backbone else None) \
            or _head_problem(model, classes) or _compile_problem(model) \
            or _scope_problem(model, accelerator)
        return problem or say(CORRECT, what=translate(self.what))

    def _backbone_problem(self, model) -> Optional[str]:
        index, backbone = find_backbone(model)
        if backbone is None:
            return say(NO_BACKBONE)
        if _has_imagenet_top(backbone):
            return say(INCLUDE_TOP)
        if backbone.trainable or backbone.trainable_weights:
            return say(BACKBONE_TRAINABLE)
        low, high = _pixel_range_after(model.layers[:index], model.input_shape)
        if abs(low + 1) > 0.02 or abs(high - 1) > 0.02:
            return say(NOT_RESCALED, low=low, high=high)
        return None

    def check(self, model, accelerator=None) -> None:
        """Print whether the learner's `model` is right, and if not, the first thing to fix.

        When the learner's cell crashed in its last run, print NOT_FINISHED: the object in the
        variable is then an older attempt (or the blank), not what the cell meant to build.
        """
        if not _finished_cells.get(self.variable, True):
            print(say(NOT_FINISHED))
            return
        sentence = self.evaluate(model, accelerator)
        if not is_blank(model) and sentence != say(CORRECT, what=translate(self.what)):
            _remember_failure(model, sentence)
        print(sentence)

    def or_solution(self, model, accelerator, image_size):
        """`model`, or while it is still a blank or its cell crashed, the course's solution model
        (so the cells below run)."""
        if not is_blank(model) and _finished_cells.get(self.variable, True):
            return model
        print(say(USING_SOLUTION))
        import keras

        namespace = {"keras": keras, "ftl": _package(), "accelerator": accelerator,
                     "IMAGE_SIZE": list(image_size), "CLASSES": CLASSES}
        exec(self.solution_code, namespace)  # the very code solution() shows
        return namespace[self.variable]

    def check_call(self) -> str:
        """The code of the check cell that follows the exercise's cell."""
        return (f"ftl.exercises.{self.name}.check({self.variable}, accelerator)\n"
                f"model = ftl.exercises.{self.name}.or_solution({self.variable}, accelerator, IMAGE_SIZE)")


def comments_translated(code: str) -> str:
    """`code` with each end-of-line comment in the chosen language (the code itself unchanged)."""
    return re.sub(r"(?<=  # )(.+)$", lambda comment: translate(comment.group(1)), code, flags=re.MULTILINE)


def _remember_failure(model, sentence: str) -> None:
    """Keep the sentence of a failed check, so that ftl.train can refuse that model with it."""
    try:
        _failed_checks[model] = sentence
    except TypeError:  # an object that cannot be weakly referenced is no Keras model to train
        pass


def _package():
    import flowers_tl

    return flowers_tl


baseline_model = ModelExercise(
    name="baseline_model",
    variable="first_model",
    what="a single Dense softmax layer on the flattened pixels",
    stub=textwrap.dedent("""\
        with accelerator.scope():
            first_model = ____  # keras.Sequential: an Input of [*IMAGE_SIZE, 3] pixels, a layer that
                                # flattens them into one vector, a Dense layer with one softmax unit per class
            first_model.compile(optimizer=____, loss=____, metrics=[____])  # integer labels: which loss?
        """),
    solution_code=textwrap.dedent("""\
        with accelerator.scope():
            first_model = keras.Sequential([
                keras.Input(shape=[*IMAGE_SIZE, 3]),
                keras.layers.Rescaling(1 / 255),  # pixels [0, 255] -> [0, 1]
                keras.layers.Flatten(),
                keras.layers.Dense(len(CLASSES), activation="softmax"),
            ])
            first_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        """),
    hint_text=("keras.layers.Flatten() turns a [192, 192, 3] image into one vector; "
               "keras.layers.Dense(len(CLASSES), activation='softmax') gives one probability per class. "
               "The labels are integers 0..4, so the loss is the *sparse* categorical cross-entropy."),
    needs_backbone=False)

transfer_model = ModelExercise(
    name="transfer_model",
    variable="transfer_model",
    what="a frozen MobileNetV2 with a Flatten and Dense softmax head, compiled for integer labels",
    stub=textwrap.dedent("""\
        with accelerator.scope():
            pretrained_model = ____  # keras.applications.MobileNetV2 for [*IMAGE_SIZE, 3] inputs, without its
                                     # ImageNet classifier on top, weights=ftl.resolve_weights()
            pretrained_model.trainable = ____  # should training change the ImageNet weights?
            transfer_model = ____  # keras.Sequential: Input, pixels [0, 255] -> [-1, 1], pretrained_model,
                                   # Flatten, a Dense layer with one softmax unit per class
            transfer_model.compile(optimizer=____, loss=____, metrics=[____])
        """),
    solution_code=textwrap.dedent("""\
        with accelerator.scope():
            pretrained_model = keras.applications.MobileNetV2(
                input_shape=[*IMAGE_SIZE, 3], include_top=False, weights=ftl.resolve_weights())
            pretrained_model.trainable = False  # keep the ImageNet features as they are
            transfer_model = keras.Sequential([
                keras.Input(shape=[*IMAGE_SIZE, 3]),
                keras.layers.Rescaling(1 / 127.5, offset=-1),  # pixels [0, 255] -> [-1, 1], as MobileNetV2 expects
                pretrained_model,
                keras.layers.Flatten(),
                keras.layers.Dense(len(CLASSES), activation="softmax"),
            ])
            transfer_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        """),
    hint_text=("include_top=False removes the ImageNet classifier; pretrained_model.trainable = False "
               "freezes it. MobileNetV2 expects pixels in [-1, 1]: keras.layers.Rescaling(1 / 127.5, "
               "offset=-1) does that inside the model. Then Flatten, then Dense(len(CLASSES), "
               "activation='softmax'), and the loss for integer labels is 'sparse_categorical_crossentropy'."),
    needs_backbone=True)


@dataclasses.dataclass
class FitExercise(Exercise):
    """The WORK REQUIRED cell where the learner trains the first model with `model.fit` themselves.

    check() reads the History that `model.fit` returned: the number of epochs, the steps per epoch
    (the training dataset repeats forever, so steps_per_epoch says where an epoch ends) and a
    validation accuracy (validation_data was given).
    """

    def evaluate(self, history, epochs: int, steps_per_epoch: int) -> str:
        """The one sentence `check()` prints (one of this module's message constants, translated)."""
        import keras

        if is_blank(history):
            return say(NOT_ATTEMPTED)
        if not isinstance(history, keras.callbacks.History):
            return say(NOT_A_HISTORY, variable=self.variable, kind=type(history).__name__)
        if len(history.epoch) != epochs:
            return say(WRONG_EPOCHS, trained=len(history.epoch), epochs=epochs)
        if history.params.get("steps") != steps_per_epoch:
            return say(WRONG_STEPS, steps=history.params.get("steps"))
        if "val_accuracy" not in history.history:
            return say(NO_VALIDATION)
        return say(CORRECT, what=translate(self.what))

    def check(self, history, epochs: int, steps_per_epoch: int) -> None:
        """Print whether `history` comes from the right model.fit call, and if not, what to change."""
        if not _finished_cells.get(self.variable, True):
            print(say(NOT_FINISHED))
            return
        print(self.evaluate(history, epochs, steps_per_epoch))

    def or_solution(self, history, model, split, *, epochs: int, accelerator=None):
        """`history`, or while it is a blank or its cell crashed, the history of ftl.train on `model`
        (the same training, so the cells below run)."""
        if not is_blank(history) and _finished_cells.get(self.variable, True):
            return history
        print(say(USING_SOLUTION))
        return _package().train(model, split, epochs=epochs, accelerator=accelerator, verbose=0)

    def check_call(self) -> str:
        """The code of the check cell that follows the exercise's cell."""
        return (f"ftl.exercises.{self.name}.check({self.variable}, PACE.baseline_epochs, steps_per_epoch)\n"
                f"first_training = ftl.exercises.{self.name}.or_solution(\n"
                f"    {self.variable}, model, split, epochs=PACE.baseline_epochs, accelerator=accelerator)")


FIT_WHAT = "a model.fit call with epochs, steps_per_epoch and validation_data"

baseline_fit = FitExercise(
    name="baseline_fit",
    variable="history",
    what=FIT_WHAT,
    stub=textwrap.dedent("""\
        training_dataset = ftl.get_training_dataset(split.training_shards, IMAGE_SIZE, BATCH_SIZE)  # repeats forever
        steps_per_epoch = split.training_images // BATCH_SIZE  # batches in one pass over the training photos
        history = ____  # model.fit on training_dataset: PACE.baseline_epochs epochs of steps_per_epoch batches,
                        # measured on validation_dataset after every epoch; shuffle=False: it shuffles itself
        """),
    solution_code=textwrap.dedent("""\
        training_dataset = ftl.get_training_dataset(split.training_shards, IMAGE_SIZE, BATCH_SIZE)  # repeats forever
        steps_per_epoch = split.training_images // BATCH_SIZE  # batches in one pass over the training photos
        history = model.fit(training_dataset, epochs=PACE.baseline_epochs, steps_per_epoch=steps_per_epoch,
                            validation_data=validation_dataset, shuffle=False)  # the dataset shuffles itself
        """),
    hint_text=("model.fit(dataset, epochs=..., steps_per_epoch=..., validation_data=...) returns a History. "
               "The training dataset never ends, so steps_per_epoch tells Keras where an epoch ends; "
               "validation_data=validation_dataset measures the accuracy on photos the model never trains on."))

EXERCISES = {exercise.name: exercise for exercise in (baseline_model, baseline_fit, transfer_model)}


# --- The pace of the notebooks ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CoursePace:
    """How much the notebook trains: the full course, or the quick mode of the automated tests."""

    fast: bool
    epochs: int
    baseline_epochs: int
    fine_tune_epochs: int
    training_shards: Optional[int] = None  # None: all of them
    validation_shards: Optional[int] = None

    def data(self, split: DataSplit) -> DataSplit:
        """`split` itself, or in quick mode its first few shards."""
        if not self.fast:
            return split
        training = split.training_shards[: self.training_shards]
        validation = split.validation_shards[: self.validation_shards]
        return DataSplit(training, validation, count_images(training), count_images(validation))

    def __str__(self) -> str:
        mode = say(QUICK_MODE, variable=FAST_ENV_VARIABLE) if self.fast else say(FULL_COURSE)
        return say(PACE, mode=mode, epochs=self.epochs)


FULL_PACE = CoursePace(fast=False, epochs=10, baseline_epochs=3, fine_tune_epochs=5)
QUICK_PACE = CoursePace(fast=True, epochs=1, baseline_epochs=1, fine_tune_epochs=1,
                        training_shards=1, validation_shards=1)


def course_pace() -> CoursePace:
    """The full course, or the quick mode when FLOWERS_TL_FAST=1 (how the tests run the notebooks)."""
    return QUICK_PACE if os.environ.get(FAST_ENV_VARIABLE, "") in ("1", "true", "yes") else FULL_PACE


def _install_in_notebook() -> None:
    """In a notebook kernel: short messages for known mistakes, crashed attempts noticed by check()."""
    from .learner_errors import install_notebook_hooks

    install_notebook_hooks()


_install_in_notebook()
