"""The course's exercises, checked in place.

Each WORK REQUIRED cell of the playground notebook has an object here, in the
spirit of Kaggle's learntools:

    transfer_model = ____                                  # the learner's cell
    ftl.exercises.transfer_model.check()                   # one targeted sentence
    model = ftl.exercises.transfer_model.or_solution()     # the learner's model, or the course's
    ftl.exercises.transfer_model.hint(1)                   # numbered hints: hint(1), hint(2)
    ftl.exercises.transfer_model.solution()

In a notebook, `check()` and `or_solution()` find the exercise's variable (`transfer_model`)
and `accelerator` in the notebook's namespace themselves; scripts and tests pass them as
arguments (`check(model, accelerator)`). Each exercise has its own variable that `check()`
only reads; `or_solution()` hands the course's solution to another name (`model`), so a
second check never grades the solution. `check()` also knows whether the learner's cell
(the last cell run that assigns the exercise's variable) finished: after an error it says
NOT_FINISHED instead of grading an older object. A model whose check failed is refused by
`ftl.train` (see `refuse_untrainable`), with the check's own sentence.

`check()` inspects the real Keras model the learner built (layers, frozen weights, what the
first layers do to pixels, compile settings, the accelerator's scope) and prints one
sentence; the sentences are the English constants below, so tests can assert them, and
flowers_tl/messages.py holds their Russian (`ftl.set_language("ru")`). The solutions are
ordinary functions in `flowers_tl.solutions`, the single source of the solution notebook.
The blank `____` and the record of which cells finished live in `flowers_tl.attempts`.
"""

import dataclasses
import inspect
import re
import textwrap
import weakref
from typing import Callable, Optional, Tuple

import numpy as np

from . import solutions
from .attempts import (MISSING, BlankError, CheckFailedError, ____, cell_finished, is_blank,  # noqa: F401
                       notebook_namespace, notebook_variable, watch)  # ____ and the errors: ftl.exercises.*
from .data import CLASSES
from .errors import ConfigError
from .learner_errors import NOT_DEFINED, install_notebook_hooks
from .messages import say, translate
from .model import find_backbone
from .pace import course_pace

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
HINT = "Hint {number} of {count}: {hint}"
NO_SUCH_HINT = "There are {count} hints: hint(1) to hint({count}); solution() shows the answer."
SOLUTION = "Solution:\n{code}"
NOT_IN_SCOPE = ("The model was not built inside the accelerator's scope, so it would not train on all "
                "{replicas} replicas: create pretrained_model and the Sequential model in `with accelerator.scope():`.")


FROM_NOTEBOOK = object()  # a check's default argument: read the variable from the notebook


class NotFound(Exception):
    """A variable a check reads is not in the notebook yet (its sentence is NOT_DEFINED)."""

    def __init__(self, variable: str) -> None:
        super().__init__(variable)
        self.variable = variable


def _finished_attempt(value, variable: str):
    """For `or_solution`: the learner's `variable` (`value`, or the notebook's) when it is filled in
    and its cell finished; else the blank `____`, after saying that the course's solution is used."""
    try:
        value = _argument(value, variable)
    except NotFound:
        value = ____
    if not is_blank(value) and cell_finished(variable):
        return value
    print(say(USING_SOLUTION))
    return ____


def _argument(value, variable: str, default=MISSING):
    """`value` as given, or the notebook's `variable` when the caller gave none.

    Without a `default`: NotFound when the notebook has no such variable, ConfigError outside
    a notebook, where the caller must pass it.
    """
    if value is not FROM_NOTEBOOK:
        return value
    if notebook_namespace() is None and default is MISSING:
        raise ConfigError(f"outside a notebook, pass `{variable}` to the check: e.g. check({variable}, ...).")
    found = notebook_variable(variable)
    if found is MISSING and default is MISSING:
        raise NotFound(variable)
    return default if found is MISSING else found


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
    in_scope = all(strategy.extended.variable_created_in_scope(variable) for variable in _tf_variables(model))
    return None if in_scope else say(NOT_IN_SCOPE, replicas=accelerator.replicas)


def _tf_variables(model):
    """The tf.Variables behind the model's Keras variables."""
    return [getattr(variable, "value", variable) for variable in model.weights]


# --- Exercises -------------------------------------------------------------------------------

_failed_checks = weakref.WeakKeyDictionary()  # model -> the sentence of its failed check


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
        solve: the course's solution, a function of `flowers_tl.solutions` (its body is the
            solution notebook's cell).
        hints: nudges that each give a little more away, still less than the solution
            (English; translated when printed).
    """

    name: str
    variable: str
    what: str
    stub: str
    solve: Callable
    hints: Tuple[str, ...]

    def __post_init__(self) -> None:
        watch(self.variable)  # so the notebook hook records whether its cells finished

    @property
    def solution_code(self) -> str:
        """The solution notebook's code of this exercise, word for word."""
        return solutions.cell_code(self.solve)

    def hint(self, number: int = 1) -> None:
        """Print hint `number` (1, 2, ...): each gives a little more away."""
        if not 1 <= number <= len(self.hints):
            print(say(NO_SUCH_HINT, count=len(self.hints)))
            return
        print(say(HINT, number=number, count=len(self.hints), hint=translate(self.hints[number - 1])))

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
        try:
            backbone = find_backbone(model)
        except ConfigError:
            return say(NO_BACKBONE)
        index = model.layers.index(backbone)
        if _has_imagenet_top(backbone):
            return say(INCLUDE_TOP)
        if backbone.trainable or backbone.trainable_weights:
            return say(BACKBONE_TRAINABLE)
        low, high = _pixel_range_after(model.layers[:index], model.input_shape)
        if abs(low + 1) > 0.02 or abs(high - 1) > 0.02:
            return say(NOT_RESCALED, low=low, high=high)
        return None

    def check(self, model=FROM_NOTEBOOK, accelerator=FROM_NOTEBOOK) -> None:
        """Print whether the learner's model is right, and if not, the first thing to fix.

        In a notebook, the model is the notebook's variable (`self.variable`) and the accelerator
        its `accelerator`, unless given. When the learner's cell crashed in its last run, print
        NOT_FINISHED: the object in the variable is then an older attempt (or the blank), not
        what the cell meant to build.
        """
        try:
            model = _argument(model, self.variable)
            accelerator = _argument(accelerator, "accelerator", default=None)
        except NotFound as missing:
            print(say(NOT_DEFINED, variable=missing.variable))
            return
        if not cell_finished(self.variable):
            print(say(NOT_FINISHED))
            return
        sentence = self.evaluate(model, accelerator)
        if not is_blank(model) and sentence != say(CORRECT, what=translate(self.what)):
            _remember_failure(model, sentence)
        print(sentence)

    def or_solution(self, model=FROM_NOTEBOOK, accelerator=FROM_NOTEBOOK, image_size=FROM_NOTEBOOK):
        """`model`, or while it is still a blank, missing or its cell crashed, the course's solution
        model (so the cells below run). In a notebook the arguments default to its variables
        (`self.variable`, `accelerator`, `IMAGE_SIZE`)."""
        model = _finished_attempt(model, self.variable)
        if not is_blank(model):
            return model
        return self.solution_model(_argument(accelerator, "accelerator"), _argument(image_size, "IMAGE_SIZE"))

    def solution_model(self, accelerator, image_size):
        """The course's solution model, built by the function whose body solution() shows.

        The function gets the notebook's variables it names (`keras`, `ftl`, `accelerator`, ...).
        """
        import keras

        notebook = {"keras": keras, "ftl": _package(), "accelerator": accelerator,
                    "IMAGE_SIZE": list(image_size), "CLASSES": CLASSES}
        return self.solve(**{name: notebook[name] for name in inspect.signature(self.solve).parameters})

    def check_call(self) -> str:
        """The code of the check cell that follows the exercise's cell."""
        return (f"ftl.exercises.{self.name}.check()\n"
                f"model = ftl.exercises.{self.name}.or_solution()")


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
    """The flowers_tl package, as the notebook's `ftl` (imported when a solution runs)."""
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
    solve=solutions.baseline_model,
    hints=("keras.layers.Flatten() turns a [192, 192, 3] image into one vector; "
           "keras.layers.Dense(len(CLASSES), activation='softmax') gives one probability per class.",
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
    solve=solutions.transfer_model,
    hints=("include_top=False removes the ImageNet classifier; pretrained_model.trainable = False freezes it.",
           "MobileNetV2 expects pixels in [-1, 1]: keras.layers.Rescaling(1 / 127.5, offset=-1) does that inside "
           "the model. Then Flatten, then Dense(len(CLASSES), activation='softmax'), and the loss for integer "
           "labels is 'sparse_categorical_crossentropy'."),
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

    def check(self, history=FROM_NOTEBOOK, epochs: Optional[int] = None, steps_per_epoch=FROM_NOTEBOOK) -> None:
        """Print whether `history` comes from the right model.fit call, and if not, what to change.

        In a notebook, `history` and `steps_per_epoch` are the notebook's variables unless given;
        `epochs` defaults to the course's pace (`PACE.baseline_epochs`).
        """
        try:
            history = _argument(history, self.variable)
            steps_per_epoch = _argument(steps_per_epoch, "steps_per_epoch")
        except NotFound as missing:
            print(say(NOT_DEFINED, variable=missing.variable))
            return
        if not cell_finished(self.variable):
            print(say(NOT_FINISHED))
            return
        epochs = course_pace().baseline_epochs if epochs is None else epochs
        print(self.evaluate(history, epochs, steps_per_epoch))

    def or_solution(self, history=FROM_NOTEBOOK, model=FROM_NOTEBOOK, split=FROM_NOTEBOOK, *,
                    epochs: Optional[int] = None, accelerator=FROM_NOTEBOOK):
        """`history`, or while it is a blank, missing or its cell crashed, the history of ftl.train on
        `model` (the same training, so the cells below run). In a notebook the arguments default to
        its variables (`history`, `model`, `split`, `accelerator`); `epochs` to the course's pace."""
        history = _finished_attempt(history, self.variable)
        if not is_blank(history):
            return history
        epochs = course_pace().baseline_epochs if epochs is None else epochs
        return _package().train(_argument(model, "model"), _argument(split, "split"), epochs=epochs,
                                accelerator=_argument(accelerator, "accelerator", default=None), verbose=0)

    def check_call(self) -> str:
        """The code of the check cell that follows the exercise's cell."""
        return (f"ftl.exercises.{self.name}.check()\n"
                f"first_training = ftl.exercises.{self.name}.or_solution()")


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
    solve=solutions.baseline_fit,
    hints=("model.fit(dataset, epochs=..., steps_per_epoch=..., validation_data=...) returns a History.",
           "The training dataset never ends, so steps_per_epoch tells Keras where an epoch ends; "
           "validation_data=validation_dataset measures the accuracy on photos the model never trains on."))

EXERCISES = {exercise.name: exercise for exercise in (baseline_model, baseline_fit, transfer_model)}

install_notebook_hooks()  # in a notebook kernel: short messages for known mistakes, crashed attempts noticed
