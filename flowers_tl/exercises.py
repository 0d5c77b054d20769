"""The course's exercises, checked in place.

Each WORK REQUIRED cell of the playground notebook has an object here, in the
spirit of Kaggle's learntools:

    transfer_model = ____                                  # the learner's cell
    ftl.exercises.transfer_model.check()                   # a coloured verdict: one targeted sentence
    # ftl.exercises.transfer_model.hint(1)                 # numbered hints: hint(1), hint(2)
    # ftl.exercises.transfer_model.solution()              # the course's answer
    model = ftl.exercises.transfer_model.or_solution()     # in the cell that uses it

`check()` judges the real object the learner made (the Keras model's layers, frozen weights,
what its first layers do to pixels, its compile settings and the accelerator's scope; or the
History of `model.fit`: its epochs, steps, metric names and which photos its validation
accuracy was measured on) and shows one `Verdict`: green when right, red when not, with the
first thing to fix. It only reads: running it, skipping it or running it twice changes nothing.

`or_solution()` hands the work on to the cells below: the learner's object when it passes the
check, else the course's own solution (built fresh), saying so in one line. So one mistake
never breaks the cells after it, and the check's verdict and what is handed on always agree.

In a notebook, both find the exercise's variable (`transfer_model`) and `accelerator` in the
notebook's namespace; scripts and tests pass them as arguments (`check(model, accelerator)`).
After an error in the learner's cell, they say NOT_FINISHED instead of grading an older
object (`attempts.cell_finished`). The sentences are English constants, translated by
`messages.say` (`ftl.set_language("ru")`). The solutions are ordinary functions in
`flowers_tl.solutions`, the single source of the solution notebook.
"""

import dataclasses
import html
import inspect
import re
import textwrap
from typing import Callable, Optional, Tuple

import numpy as np

from . import solutions
from .attempts import (MISSING, BlankError, ____, cell_finished, is_blank,  # noqa: F401
                       notebook_namespace, notebook_variable, watch)  # ____ and BlankError: ftl.exercises.*
from .data import CLASSES
from .errors import ConfigError, FlowersTLError
from .learner_errors import NOT_DEFINED
from .messages import N_, N_plural, class_name, say, say_n, translate
from .model import find_backbone
from .pace import course_pace
from .scores import ACCURACY_NAMES, accuracy_name

# --- What check() says (one sentence each) ---------------------------------------------------
CORRECT = N_("Correct: {what} is exactly what the course needs.")
NOT_ATTEMPTED = N_("Not attempted yet: replace every ____ in the cell above, run it, then run this check again.")
NOT_FINISHED = N_("Your cell did not finish: fix the error above, run the cell again, then run this check again.")
NOT_A_MODEL = N_("`{variable}` should be a Keras model (keras.Sequential([...])), but it is a {kind}.")
NO_BACKBONE = N_("No pretrained MobileNetV2 inside the model: put `pretrained_model` in the "
                 "keras.Sequential list, between the rescaling layer and the Flatten layer.")
INCLUDE_TOP = N_("The MobileNetV2 still has its ImageNet classifier on top: create it with "
                 "include_top=False so it outputs feature maps, not 1000 ImageNet classes.")
BACKBONE_TRAINABLE = N_("The pretrained MobileNetV2 is still trainable: set "
                        "pretrained_model.trainable = False so training keeps its ImageNet weights.")
NOT_RESCALED = N_("The model does not turn pixels [0, 255] into [-1, 1] before MobileNetV2 "
                  "(0 became {low:.3g} and 255 became {high:.3g}): add "
                  "keras.layers.Rescaling(1 / 127.5, offset=-1) before pretrained_model.")
RAW_PIXELS = N_("The Dense layer gets raw pixels (255 stays {high:.3g}): add keras.layers.Rescaling(1 / 255) "
                "after the Input, so that the loss starts near 1.6 instead of in the thousands.")
MISSING_FLATTEN = N_("The output has shape {shape}, not one row of class probabilities per image: "
                     "put a keras.layers.Flatten() before the Dense layer.")
NOT_THE_FLATTEN_HEAD = N_("After MobileNetV2 this exercise's head is keras.layers.Flatten() then the Dense layer, and "
                          "nothing else (yours: {layers}). Other heads come in \"Go further\", which compares them "
                          "with this one.")
LAST_NOT_DENSE = N_("The last layer is a {kind}: end the model with keras.layers.Dense(len(CLASSES), "
                    "activation='softmax').")
WRONG_UNITS = N_("The last Dense layer has {units} units, but there are {classes} classes: "
                 "use keras.layers.Dense({classes}, ...) so there is one probability per class.")
WRONG_ACTIVATION = N_("The last Dense layer's activation is '{activation}': use activation='softmax' "
                      "so the outputs are probabilities that add up to 1.")
NOT_COMPILED = N_("The model is not compiled yet: call model.compile(optimizer='adam', "
                  "loss='sparse_categorical_crossentropy', metrics=['accuracy']).")
LOSS_NOT_SPARSE = N_("The loss '{loss}' expects one-hot labels, but the dataset gives integer classes (0 to 4): "
                     "use loss='sparse_categorical_crossentropy'.")
WRONG_LOSS = N_("The loss '{loss}' is not a classification loss: use loss='sparse_categorical_crossentropy'.")
LOSS_FROM_LOGITS = N_("The loss uses from_logits=True, but the last layer already applies softmax: "
                      "use loss='sparse_categorical_crossentropy' (from_logits=False).")
NO_ACCURACY = N_("The model has no accuracy metric: compile it with metrics=['accuracy'] to see how often it is right.")
NOT_IN_SCOPE = N_("The model was not built inside the accelerator's scope, so it would not train on all {replicas} "
                  "replicas: create pretrained_model and the Sequential model in `with accelerator.scope():`.")
NOT_A_HISTORY = N_("`{variable}` should be what model.fit returns (a keras.callbacks.History), but it is a {kind}: "
                   "write {variable} = model.fit(...).")
FIT_MODEL_PROBLEM = N_("The model that made this history was compiled wrongly, so fix its cell first: {problem}")
WRONG_STEPS = N_plural("An epoch had {steps} step, but the training photos make {batches} batches: leave "
                       "steps_per_epoch out, the training dataset knows where an epoch ends.",
                       "An epoch had {steps} steps, but the training photos make {batches} batches: leave "
                       "steps_per_epoch out, the training dataset knows where an epoch ends.")
NO_VALIDATION = N_("No validation accuracy in the history: pass validation_data=validation_dataset to model.fit, "
                   "to see how the model does on photos it never trains on.")
VALIDATED_ON_OTHER_PHOTOS = N_("The history's validation accuracy ({logged:.3f}) is not the model's accuracy on "
                               "validation_dataset ({real:.3f}): it was measured on other photos. Pass "
                               "validation_data=validation_dataset, the photos the model never trains on, and no "
                               "validation_steps.")
# A sentence with a number that agrees with it: (singular, plural), shown by messages.say_n.
WRONG_EPOCHS = N_plural("The model trained for {trained} epoch, not {epochs}: pass epochs=PACE.baseline_epochs to "
                        "model.fit.",
                        "The model trained for {trained} epochs, not {epochs}: pass epochs=PACE.baseline_epochs to "
                        "model.fit.")
HINT = N_("Hint {number} of {count}: {hint}")
PASS_THE_VARIABLE = N_("outside a notebook, pass `{variable}` to the check: e.g. check({variable}, ...).")
NO_SUCH_HINT = N_("There are {count} hints: hint(1) to hint({count}); solution() shows the answer.")
SOLUTION = N_("Solution:\n{code}")

# --- What or_solution() says when it hands on the course's work -------------------------------
USING_COURSE_MODEL = N_("Using the course's model from here on, so that every cell below runs ({why}). Fix your cell "
                        "and run it again to use your own.")
USING_COURSE_TRAINING = N_("Using the course's first model, trained by ftl.train, from here on, so that every cell "
                           "below runs ({why}). Fix your cell and run it again to use your own.")
WHY_NOT_ATTEMPTED = N_("yours is not filled in yet")
WHY_NOT_FINISHED = N_("your cell did not finish")
WHY_INCORRECT = N_("yours did not pass its check")

# Colours of the verdicts in a notebook (as Kaggle's learntools): the plain text stays as it is.
COLORS = {True: "#33cc33", False: "#cc3333", None: "#ccaa33", "hint": "#3366cc"}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a check found, and the one sentence that says it.

    `ok`: True (right), False (wrong), None (nothing to grade yet: not attempted, not run, crashed).
    `why`: for `or_solution`'s note, why the learner's work is not handed on (a WHY_ sentence).
    In a notebook it shows green, red or amber (`_repr_mimebundle_`); its plain text is the sentence.
    """

    ok: Optional[bool]
    message: str
    color_key: object = None  # COLORS key when it is not `ok` (a hint)
    why: str = WHY_INCORRECT

    def __str__(self) -> str:
        return self.message

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        color = COLORS[self.color_key if self.color_key is not None else self.ok]
        text = html.escape(self.message).replace("\n", "<br>")
        return {"text/plain": self.message, "text/html": f'<span style="color:{color}">{text}</span>'}

    def show(self) -> None:
        """Display it: coloured in a notebook, the plain sentence elsewhere."""
        if notebook_namespace() is None:
            print(self.message)
        else:
            from IPython.display import display

            display(self)


FROM_NOTEBOOK = object()  # a check's default argument: read the variable from the notebook


class NotFound(FlowersTLError, NameError):
    """A variable a check reads is not in the notebook yet; its message is NOT_DEFINED, translated."""

    def __init__(self, variable: str) -> None:
        super().__init__(say(NOT_DEFINED, variable=variable))
        self.variable = variable


def _argument(value, variable: str, default=MISSING):
    """`value` as given, or the notebook's `variable` when the caller gave none.

    Without a `default`: NotFound when the notebook has no such variable, ConfigError outside
    a notebook, where the caller must pass it.
    """
    if value is not FROM_NOTEBOOK:
        return value
    if notebook_namespace() is None and default is MISSING:
        raise ConfigError(say(PASS_THE_VARIABLE, variable=variable))
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


ACCURACY_METRICS = {_name(name) for name in ACCURACY_NAMES}  # the spellings compile accepts for accuracy
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
    """Flatten before the last Dense, its units and activation."""
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


def _flatten_head_problem(model, backbone) -> Optional[str]:
    """The transfer exercise's head is exactly Flatten then Dense, so "Go further" compares like with like."""
    import keras

    head = model.layers[model.layers.index(backbone) + 1:]
    kinds = [type(layer) for layer in head]
    if kinds != [keras.layers.Flatten, type(model.layers[-1])]:
        return say(NOT_THE_FLATTEN_HEAD, layers=", ".join(type(layer).__name__ for layer in head))
    return None


def _scaling_problem(model) -> Optional[str]:
    """The first model's Dense layer should see pixels scaled to about [0, 1] (or [-1, 1]), not [0, 255]."""
    import keras

    first_dense = next((index for index, layer in enumerate(model.layers)
                        if isinstance(layer, (keras.layers.Flatten, keras.layers.Dense))), 0)
    low, high = _pixel_range_after(model.layers[:first_dense], model.input_shape)
    return say(RAW_PIXELS, high=high) if max(abs(low), abs(high)) > 2 else None


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
    if not ACCURACY_METRICS & set(_metric_names(config.get("metrics"))):
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

@dataclasses.dataclass
class Exercise:
    """What every WORK REQUIRED cell has: its code, its hints and the variable its check reads.

    Attributes:
        name: the attribute name in this module (used in the check call).
        variable: the notebook variable the learner's cell assigns and check() reads.
        what: what the learner builds, for the "Correct" sentence (English; translated when shown).
        stub: the playground's code, with `____` blanks.
        solve: the course's solution, a function of `flowers_tl.solutions` (its body is the
            solution notebook's cell).
        hints: nudges that each give a little more away, still less than the solution
            (English; translated when shown).
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
        """Show hint `number` (1, 2, ...): each gives a little more away."""
        if not 1 <= number <= len(self.hints):
            Verdict(None, say(NO_SUCH_HINT, count=len(self.hints)), "hint").show()
            return
        Verdict(None, say(HINT, number=number, count=len(self.hints), hint=translate(self.hints[number - 1])),
                "hint").show()

    def solution(self) -> None:
        """Print the course's solution."""
        print(say(SOLUTION, code=comments_translated(self.solution_code)))

    def check_call(self) -> str:
        """The code of the check cell that follows the exercise's cell: the check, then how to get help."""
        return (f"ftl.exercises.{self.name}.check()\n"
                f"# ftl.exercises.{self.name}.hint(1)  # stuck? hint(2) gives more away\n"
                f"# ftl.exercises.{self.name}.solution()  # the course's answer")

    def _correct(self) -> Verdict:
        return Verdict(True, say(CORRECT, what=translate(self.what)))

    def _attempt(self, value, variable: str):
        """The learner's object, or a Verdict when there is nothing to grade yet (missing, crashed)."""
        try:
            value = _argument(value, variable)
        except NotFound as missing:
            return Verdict(None, say(NOT_DEFINED, variable=missing.variable), why=WHY_NOT_ATTEMPTED)
        if not cell_finished(variable):
            return Verdict(None, say(NOT_FINISHED), why=WHY_NOT_FINISHED)
        return value


@dataclasses.dataclass
class ModelExercise(Exercise):
    """One WORK REQUIRED cell that builds and compiles a model in its own variable.

    `needs_backbone`: the model must contain the frozen pretrained MobileNetV2, with the
    Flatten head; without it, the first model, whose Dense layer must see scaled pixels.
    """

    needs_backbone: bool

    def evaluate(self, model, accelerator=None, classes: int = len(CLASSES)) -> Verdict:
        """The verdict on `model` (one of this module's message constants, translated)."""
        import keras

        if is_blank(model):
            return Verdict(None, say(NOT_ATTEMPTED), why=WHY_NOT_ATTEMPTED)
        if not isinstance(model, keras.Model):
            return Verdict(False, say(NOT_A_MODEL, variable=self.variable, kind=type(model).__name__))
        problem = (self._backbone_problem(model) if self.needs_backbone else _scaling_problem(model)) \
            or _head_problem(model, classes) \
            or (_flatten_head_problem(model, find_backbone(model)) if self.needs_backbone else None) \
            or _compile_problem(model) or _scope_problem(model, accelerator)
        return Verdict(False, problem) if problem else self._correct()

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

    def verdict(self, model=FROM_NOTEBOOK, accelerator=FROM_NOTEBOOK) -> Verdict:
        """The verdict on the learner's model; in a notebook, the notebook's `self.variable` and `accelerator`.

        NOT_FINISHED when the learner's cell crashed in its last run: the object in the variable is
        then an older attempt (or the blank), not what the cell meant to build.
        """
        model = self._attempt(model, self.variable)
        if isinstance(model, Verdict):
            return model
        return self.evaluate(model, _argument(accelerator, "accelerator", default=None))

    def check(self, model=FROM_NOTEBOOK, accelerator=FROM_NOTEBOOK) -> None:
        """Show whether the learner's model is right, and if not, the first thing to fix (it only reads)."""
        self.verdict(model, accelerator).show()

    def or_solution(self, model=FROM_NOTEBOOK, accelerator=FROM_NOTEBOOK, image_size=FROM_NOTEBOOK):
        """The learner's model when it passes the check; else, saying so, the course's solution model,
        built fresh (so every cell below runs). In a notebook the arguments default to its variables
        (`self.variable`, `accelerator`, `IMAGE_SIZE`)."""
        verdict = self.verdict(model, accelerator)
        if verdict.ok:
            return _argument(model, self.variable)
        Verdict(None, say(USING_COURSE_MODEL, why=say(verdict.why))).show()
        return self.solution_model(_argument(accelerator, "accelerator", default=None),
                                   _argument(image_size, "IMAGE_SIZE"))

    def solution_model(self, accelerator, image_size):
        """The course's solution model, built by the function whose body solution() shows.

        The function gets the notebook's variables it names (`keras`, `ftl`, `accelerator`, ...).
        """
        import keras

        from .accelerator import detect_accelerator

        notebook = {"keras": keras, "ftl": _package(), "accelerator": accelerator or detect_accelerator(verbose=False),
                    "IMAGE_SIZE": list(image_size), "CLASSES": CLASSES}
        return self.solve(**{name: notebook[name] for name in inspect.signature(self.solve).parameters})


def comments_translated(code: str) -> str:
    """`code` with each end-of-line comment in the chosen language (the code itself unchanged)."""
    return re.sub(r"(?<=  # )(.+)$", lambda comment: translate(comment.group(1)), code, flags=re.MULTILINE)


def _package():
    """The flowers_tl package, as the notebook's `ftl` (imported when a solution runs)."""
    import flowers_tl

    return flowers_tl


baseline_model = ModelExercise(
    name="baseline_model",
    variable="first_model",
    what=N_("a single Dense softmax layer on the rescaled, flattened pixels"),
    stub=textwrap.dedent("""\
        with accelerator.scope():
            first_model = ____  # keras.Sequential: an Input of [*IMAGE_SIZE, 3] pixels, a layer that rescales
                                # them from [0, 255] to [0, 1], a layer that flattens them into one vector,
                                # and a Dense layer with one softmax unit per class
            first_model.compile(optimizer=____, loss=____, metrics=[____])  # integer labels: which loss?
        """),
    solve=solutions.baseline_model,
    hints=(N_("keras.Input(shape=[*IMAGE_SIZE, 3]) takes the photos; keras.layers.Rescaling(1 / 255) turns pixels "
              "[0, 255] into [0, 1]; keras.layers.Flatten() turns each image into one vector; "
              "keras.layers.Dense(len(CLASSES), activation='softmax') gives one probability per class."),
           N_("The labels are integers 0..4, so the loss is the sparse categorical cross-entropy: "
              "loss='sparse_categorical_crossentropy', with optimizer='adam' and metrics=['accuracy'].")),
    needs_backbone=False)

transfer_model = ModelExercise(
    name="transfer_model",
    variable="transfer_model",
    what=N_("a frozen MobileNetV2 with a Flatten and Dense softmax head, compiled for integer labels"),
    stub=textwrap.dedent("""\
        with accelerator.scope():
            pretrained_model = ____  # keras.applications.MobileNetV2 with input_shape=[*IMAGE_SIZE, 3], without
                                     # its ImageNet classifier on top, weights=ftl.resolve_weights()
            pretrained_model.trainable = ____  # should training change the ImageNet weights?
            transfer_model = ____  # keras.Sequential: Input, pixels [0, 255] -> [-1, 1], pretrained_model,
                                   # Flatten, a Dense layer with one softmax unit per class
            transfer_model.compile(optimizer=____, loss=____, metrics=[____])
        """),
    solve=solutions.transfer_model,
    hints=(N_("include_top=False removes the ImageNet classifier; pretrained_model.trainable = False freezes it."),
           N_("MobileNetV2 expects pixels in [-1, 1]: keras.layers.Rescaling(1 / 127.5, offset=-1) does that inside "
              "the model. Then Flatten, then Dense(len(CLASSES), activation='softmax'), and the loss for integer "
              "labels is 'sparse_categorical_crossentropy'.")),
    needs_backbone=True)


@dataclasses.dataclass
class FitExercise(Exercise):
    """The WORK REQUIRED cell where the learner trains the first model with `model.fit` themselves.

    check() reads the History that `model.fit` returned and the model it trained: how that model
    was compiled, the steps of an epoch (the training dataset's batches unless steps_per_epoch
    said otherwise), the epochs, the metric names, and whether the validation accuracy it logged
    is the model's accuracy on `validation_dataset` (and not on other photos).
    """

    def evaluate(self, history, epochs: int, batches: Optional[int], validation_dataset=None) -> Verdict:
        """The verdict on `history` (one of this module's message constants, translated).

        `batches`: the batches of one pass over the training dataset (None: not checked);
        `validation_dataset`: where the validation accuracy must have been measured (None: not checked).
        """
        import keras

        if is_blank(history):
            return Verdict(None, say(NOT_ATTEMPTED), why=WHY_NOT_ATTEMPTED)
        if not isinstance(history, keras.callbacks.History):
            return Verdict(False, say(NOT_A_HISTORY, variable=self.variable, kind=type(history).__name__))
        model = getattr(history, "model", None)
        problem = _compile_problem(model) if model is not None else None
        if problem:
            return Verdict(False, say(FIT_MODEL_PROBLEM, problem=problem))
        steps = history.params.get("steps")
        if batches is not None and steps != batches:
            return Verdict(False, say_n(*WRONG_STEPS, steps, steps=steps, batches=batches))
        if len(history.epoch) != epochs:
            return Verdict(False, say_n(*WRONG_EPOCHS, len(history.epoch), trained=len(history.epoch), epochs=epochs))
        try:
            name = accuracy_name(history.history, validation=True)
        except KeyError:
            return Verdict(False, say(NO_VALIDATION))
        if validation_dataset is not None and model is not None:
            logged = float(history.history[name][-1])
            real = float(model.evaluate(validation_dataset, verbose=0, return_dict=True)[name[len("val_"):]])
            if abs(logged - real) > 1e-3:
                return Verdict(False, say(VALIDATED_ON_OTHER_PHOTOS, logged=logged, real=real))
        return self._correct()

    def verdict(self, history=FROM_NOTEBOOK, epochs: Optional[int] = None, training_dataset=FROM_NOTEBOOK,
                validation_dataset=FROM_NOTEBOOK) -> Verdict:
        """The verdict on the learner's history; in a notebook, the notebook's `history`, `training_dataset`
        and `validation_dataset` unless given; `epochs` defaults to the course's pace (`PACE.baseline_epochs`)."""
        history = self._attempt(history, self.variable)
        if isinstance(history, Verdict):
            return history
        training_dataset = _argument(training_dataset, "training_dataset", default=None)
        batches = int(training_dataset.cardinality()) if training_dataset is not None else None
        epochs = course_pace().baseline_epochs if epochs is None else epochs
        return self.evaluate(history, epochs, batches if batches and batches > 0 else None,
                             _argument(validation_dataset, "validation_dataset", default=None))

    def check(self, history=FROM_NOTEBOOK, epochs: Optional[int] = None, training_dataset=FROM_NOTEBOOK,
              validation_dataset=FROM_NOTEBOOK) -> None:
        """Show whether `history` comes from the right model.fit call, and if not, what to change."""
        self.verdict(history, epochs, training_dataset, validation_dataset).show()

    def or_solution(self, history=FROM_NOTEBOOK, *, epochs: Optional[int] = None, split=FROM_NOTEBOOK,
                    accelerator=FROM_NOTEBOOK, image_size=FROM_NOTEBOOK):
        """The learner's history when it passes the check; else, saying so, the course's first model
        built fresh and trained by `ftl.train` (its result has the same `.history`), so every cell
        below runs. In a notebook the arguments default to its variables."""
        verdict = self.verdict(history, epochs)
        if verdict.ok:
            return _argument(history, self.variable)
        Verdict(None, say(USING_COURSE_TRAINING, why=say(verdict.why))).show()
        accelerator = _argument(accelerator, "accelerator", default=None)
        model = baseline_model.solution_model(accelerator, _argument(image_size, "IMAGE_SIZE"))
        epochs = course_pace().baseline_epochs if epochs is None else epochs
        return _package().train(model, _argument(split, "split"), epochs=epochs, accelerator=accelerator, verbose=0)


FIT_WHAT = N_("a model.fit call with epochs and validation_data")

baseline_fit = FitExercise(
    name="baseline_fit",
    variable="history",
    what=FIT_WHAT,
    stub=textwrap.dedent("""\
        model = ftl.exercises.baseline_model.or_solution()  # your first_model if it passed its check, else the course's
        training_dataset = ftl.get_training_dataset(split.training_shards, IMAGE_SIZE, BATCH_SIZE)  # one epoch
        history = ____  # model.fit on training_dataset for PACE.baseline_epochs epochs,
                        # measured on validation_dataset after every epoch
        """),
    solve=solutions.baseline_fit,
    hints=(N_("model.fit(dataset, epochs=..., validation_data=...) trains and returns a History."),
           N_("history = model.fit(training_dataset, epochs=PACE.baseline_epochs, validation_data=validation_dataset): "
              "validation_dataset holds the photos the model never trains on.")))


# --- The last chapter, your own photos: exercises that read numbers ----------------------------
SHARE_NOT_A_NUMBER = N_("`VALIDATION_SHARE` should be a number such as 0.2 (a fifth of the photos), but it is a "
                        "{kind}.")
SHARE_OUT_OF_RANGE = N_("`VALIDATION_SHARE` is {share}: a share is a number between 0 and 1, such as 0.2 for a fifth "
                        "of the photos.")
SHARE_TOO_SMALL = N_plural("With a share of {share}, class '{name}' keeps about {count} photo for validation: too few to "
                           "measure it. Take a larger share, or add photos to that class.",
                           "With a share of {share}, class '{name}' keeps about {count} photos for validation: too few to "
                           "measure it. Take a larger share, or add photos to that class.")
SHARE_TOO_LARGE = N_("A share of {share} keeps too many photos away from training: the model learns only from what "
                     "is left. Keep it at {most} or below (0.2 is the usual choice).")
NOT_A_CLASS = N_("'{answer}' is not one of your classes ({names}): copy a name from the table above.")
NOT_THE_WORST = N_("Class '{answer}' has a validation accuracy of {accuracy:.0%}, but '{worst}' has {lowest:.0%}: "
                   "look for the smallest number in the table.")


@dataclasses.dataclass
class ValueExercise(Exercise):
    """A WORK REQUIRED cell whose answer is a value the learner chooses or reads off (a number, a name).

    `judge(answer, **notebook values)` returns None when the answer is right, else the sentence
    that says what to change; `needs` names the notebook variables it reads besides the answer.
    """

    judge: Callable = None
    needs: Tuple[str, ...] = ()

    def verdict(self, answer=FROM_NOTEBOOK, **given) -> Verdict:
        """The verdict on the learner's answer; in a notebook, the answer and `needs` default to its variables."""
        answer = self._attempt(answer, self.variable)
        if isinstance(answer, Verdict):
            return answer
        if is_blank(answer):
            return Verdict(None, say(NOT_ATTEMPTED), why=WHY_NOT_ATTEMPTED)
        problem = self.judge(answer, **self._needed(given))
        return Verdict(False, problem) if problem else self._correct()

    def check(self, answer=FROM_NOTEBOOK, **given) -> None:
        """Show whether the answer is right, and if not, what to look at (it only reads)."""
        self.verdict(answer, **given).show()

    def or_solution(self, answer=FROM_NOTEBOOK, **given):
        """The learner's answer when it passes the check; else, saying so, the course's."""
        verdict = self.verdict(answer, **given)
        if verdict.ok:
            return _argument(answer, self.variable)
        Verdict(None, say(USING_COURSE_ANSWER, why=say(verdict.why))).show()
        needed = self._needed(given)
        return self.solve(**{name: needed[name] for name in inspect.signature(self.solve).parameters})

    def _needed(self, given: dict) -> dict:
        """The notebook values `judge` reads: as given, else the notebook's variables."""
        return {name: given[name] if name in given else _argument(FROM_NOTEBOOK, name) for name in self.needs}


USING_COURSE_ANSWER = N_("Using the course's answer from here on, so that every cell below runs ({why}). Fix your "
                         "cell and run it again to use your own.")
MIN_VALIDATION_PHOTOS = 3  # per class: fewer, and its accuracy jumps by a third with each photo
MAX_SHARE = 0.4


def _judge_share(share, photo_check) -> Optional[str]:
    """A share of at most MAX_SHARE that leaves every class MIN_VALIDATION_PHOTOS validation photos."""
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        return say(SHARE_NOT_A_NUMBER, kind=type(share).__name__)
    if not 0 < share < 1:
        return say(SHARE_OUT_OF_RANGE, share=share)
    if share > MAX_SHARE:
        return say(SHARE_TOO_LARGE, share=share, most=MAX_SHARE)
    smallest = min(photo_check.counts, key=photo_check.counts.get)
    kept = int(share * photo_check.counts[smallest])
    if kept < MIN_VALIDATION_PHOTOS:
        return say_n(*SHARE_TOO_SMALL, kept, share=share, name=class_name(smallest), count=kept)
    return None


def _judge_worst_class(answer, scores) -> Optional[str]:
    """The class with the lowest validation accuracy (any of them on a tie)."""
    measured = {name: accuracy for name, accuracy in scores["per_class_accuracy"].items() if accuracy is not None}
    if answer not in measured:
        return say(NOT_A_CLASS, answer=answer, names=", ".join(class_name(name) for name in measured))
    worst = min(measured, key=measured.get)
    if measured[answer] > measured[worst]:
        return say(NOT_THE_WORST, answer=class_name(answer), accuracy=measured[answer], worst=class_name(worst),
                   lowest=measured[worst])
    return None


validation_share = ValueExercise(
    name="validation_share",
    variable="VALIDATION_SHARE",
    what=N_("a validation share that measures every class and leaves most photos to learn from"),
    stub=textwrap.dedent("""\
        VALIDATION_SHARE = ____  # the share of each class's photos kept aside to measure the model (0 to 1)
        """),
    solve=solutions.validation_share,
    hints=(N_("The validation photos are never trained on: with too few, the accuracy of a class jumps with each "
              "photo; with too many, the model has little left to learn from."),
           N_("At most 0.4, and enough for every class to keep at least 3 photos aside: 0.2 (a fifth) is the usual "
              "choice.")),
    judge=_judge_share,
    needs=("photo_check",))

worst_class = ValueExercise(
    name="worst_class",
    variable="WORST_CLASS",
    what=N_("the class the model gets wrong most often"),
    stub=textwrap.dedent("""\
        WORST_CLASS = ____  # the name of the class with the lowest accuracy in the table above, in quotes
        """),
    solve=solutions.worst_class,
    hints=(N_("The table gives each class's accuracy on its validation photos: the share of them the model gets "
              "right."),
           N_("Find the smallest accuracy in the table and write its class's name in quotes, e.g. "
              "WORST_CLASS = 'rose'.")),
    judge=_judge_worst_class,
    needs=("scores",))

EXERCISES = {exercise.name: exercise for exercise in (baseline_model, baseline_fit, transfer_model,
                                                      validation_share, worst_class)}
