"""The exercise checks on real Keras models: the solution passes, each typical mistake gets its sentence."""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

import flowers_tl as ftl
from flowers_tl import attempts, pace, solutions
from flowers_tl import exercises as ex
from flowers_tl.exercises import ____
from flowers_tl.messages import catalogue

RUSSIAN = catalogue("ru")

SIZE = [96, 96]  # small inputs keep MobileNetV2 fast; the checks do not depend on the size
CLASSES = ftl.CLASSES


def run_solution(exercise, accelerator=None):
    """The model the exercise's solution builds: the function whose body is the notebook's cell."""
    return exercise.solution_model(accelerator or ftl.detect_accelerator(verbose=False), SIZE)


def transfer(include_top=False, trainable=False, rescale="minus1_1", pooling="flatten", units=5,
             activation="softmax", compile=True, loss="sparse_categorical_crossentropy",
             metrics=("accuracy",)):
    """The transfer-learning model with one thing changed (random weights: only structure is checked)."""
    backbone = keras.applications.MobileNetV2(input_shape=[*SIZE, 3], include_top=include_top, weights=None)
    backbone.trainable = trainable
    preprocessing = {"minus1_1": [keras.layers.Rescaling(1 / 127.5, offset=-1)],
                     "0_1": [keras.layers.Rescaling(1 / 255)],
                     "none": [],
                     "preprocess_input": [keras.layers.Lambda(keras.applications.mobilenet_v2.preprocess_input)]}
    head = {"flatten": [keras.layers.Flatten()], "gap": [keras.layers.GlobalAveragePooling2D()],
            "gap_flatten": [keras.layers.GlobalAveragePooling2D(), keras.layers.Flatten()], "none": []}
    model = keras.Sequential([keras.Input(shape=[*SIZE, 3]), *preprocessing[rescale], backbone,
                              *(head[pooling] if not include_top else []),
                              keras.layers.Dense(units, activation=activation)])
    if compile:
        model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
    return model


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_transfer_solution_is_correct_with_the_real_weights():
    model = run_solution(ex.transfer_model)
    verdict = ex.transfer_model.evaluate(model)
    assert verdict.ok is True and verdict.message == ex.CORRECT.format(what=ex.transfer_model.what)


@pytest.mark.parametrize("model", [lambda: transfer(rescale="preprocess_input"),
                                   lambda: transfer(loss=keras.losses.SparseCategoricalCrossentropy(),
                                                    metrics=[keras.metrics.SparseCategoricalAccuracy()]),
                                   lambda: transfer(metrics=["acc"]),
                                   lambda: transfer(metrics=["sparse_categorical_accuracy"])],
                         ids=["preprocess_input", "loss-and-metric-objects", "acc", "sparse_categorical_accuracy"])
def test_transfer_accepts_equivalent_answers(model):
    verdict = ex.transfer_model.evaluate(model())
    assert verdict.ok is True and verdict.message.startswith("Correct")


MISTAKES = {
    "include_top": (lambda: transfer(include_top=True), ex.INCLUDE_TOP),
    "trainable": (lambda: transfer(trainable=True), ex.BACKBONE_TRAINABLE),
    "not-rescaled": (lambda: transfer(rescale="none"), ex.NOT_RESCALED.format(low=0, high=255)),
    "divided-by-255": (lambda: transfer(rescale="0_1"), ex.NOT_RESCALED.format(low=0, high=1)),
    "no-flatten": (lambda: transfer(pooling="none"), ex.MISSING_FLATTEN.format(shape=(None, 3, 3, 5))),
    "global-average-pooling": (lambda: transfer(pooling="gap"),
                               ex.NOT_THE_FLATTEN_HEAD.format(layers="GlobalAveragePooling2D, Dense")),
    "pooling-then-flatten": (lambda: transfer(pooling="gap_flatten"),
                             ex.NOT_THE_FLATTEN_HEAD.format(layers="GlobalAveragePooling2D, Flatten, Dense")),
    "units": (lambda: transfer(units=1000), ex.WRONG_UNITS.format(units=1000, classes=5)),
    "activation": (lambda: transfer(activation="relu"), ex.WRONG_ACTIVATION.format(activation="relu")),
    "no-activation": (lambda: transfer(activation=None), ex.WRONG_ACTIVATION.format(activation="linear")),
    "not-compiled": (lambda: transfer(compile=False), ex.NOT_COMPILED),
    "one-hot-loss": (lambda: transfer(loss="categorical_crossentropy"),
                     ex.LOSS_NOT_SPARSE.format(loss="categorical_crossentropy")),
    "one-hot-loss-object": (lambda: transfer(loss=keras.losses.CategoricalCrossentropy()),
                            ex.LOSS_NOT_SPARSE.format(loss="CategoricalCrossentropy")),
    "regression-loss": (lambda: transfer(loss="mse"), ex.WRONG_LOSS.format(loss="mse")),
    "from-logits": (lambda: transfer(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                    ex.LOSS_FROM_LOGITS),
    "no-accuracy": (lambda: transfer(metrics=()), ex.NO_ACCURACY),
    "no-backbone": (lambda: run_solution(ex.baseline_model), ex.NO_BACKBONE),
    "blank": (lambda: ____, ex.NOT_ATTEMPTED),
    "not-a-model": (lambda: [keras.layers.Flatten()], ex.NOT_A_MODEL.format(variable="transfer_model", kind="list")),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_transfer_mistake_gets_its_sentence(name, capsys):
    build, expected = MISTAKES[name]
    ex.transfer_model.check(build())
    assert capsys.readouterr().out.strip() == expected
    assert ex.transfer_model.evaluate(build()).ok is (None if name == "blank" else False)  # never "Correct"


def test_baseline_solution_and_mistakes():
    baseline = ex.baseline_model
    assert str(baseline.evaluate(run_solution(baseline))) == ex.CORRECT.format(what=baseline.what)
    assert str(baseline.evaluate(____)) == ex.NOT_ATTEMPTED

    def single_layer(flatten=True, activation="softmax", loss="sparse_categorical_crossentropy", scale=1 / 255,
                     metrics=("accuracy",)):
        model = keras.Sequential([keras.Input(shape=[*SIZE, 3]), *([keras.layers.Rescaling(scale)] if scale else []),
                                  *([keras.layers.Flatten()] if flatten else []),
                                  keras.layers.Dense(5, activation=activation)])
        model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
        return model

    assert baseline.evaluate(single_layer()).ok is True
    assert baseline.evaluate(single_layer(scale=1 / 127.5)).ok is True  # [0, 2]: scaled, near enough
    assert baseline.evaluate(single_layer(metrics=["acc"])).ok is True
    assert str(baseline.evaluate(single_layer(scale=None))) == ex.RAW_PIXELS.format(high=255)  # losses in thousands
    assert str(baseline.evaluate(single_layer(flatten=False))) == ex.MISSING_FLATTEN.format(shape=(None, 96, 96, 5))
    assert str(baseline.evaluate(single_layer(activation="sigmoid"))) == \
        ex.WRONG_ACTIVATION.format(activation="sigmoid")
    assert str(baseline.evaluate(single_layer(loss="categorical_crossentropy"))) == \
        ex.LOSS_NOT_SPARSE.format(loss="categorical_crossentropy")
    assert str(baseline.evaluate(single_layer(metrics=()))) == ex.NO_ACCURACY


def test_hint_and_solution_print_text(capsys):
    ex.transfer_model.hint()
    assert "include_top=False" in capsys.readouterr().out
    ex.transfer_model.solution()
    assert ex.transfer_model.solution_code in capsys.readouterr().out


def test_hints_are_numbered_and_each_gives_more_away(capsys):
    transfer_ = ex.transfer_model
    assert len(transfer_.hints) == 2
    transfer_.hint(1)
    first = capsys.readouterr().out.strip()
    transfer_.hint(2)
    second = capsys.readouterr().out.strip()
    assert first == ex.HINT.format(number=1, count=2, hint=transfer_.hints[0])
    assert second == ex.HINT.format(number=2, count=2, hint=transfer_.hints[1])
    assert "include_top=False" in first and "Rescaling(1 / 127.5, offset=-1)" in second
    for beyond in (0, 3):
        transfer_.hint(beyond)
        assert capsys.readouterr().out.strip() == ex.NO_SUCH_HINT.format(count=2)
    for exercise in ex.EXERCISES.values():
        assert len(exercise.hints) >= 2 and len(set(exercise.hints)) == len(exercise.hints)


def test_solution_code_is_the_body_of_the_solution_function():
    """One source: the cell solution() prints and the notebook holds is the function or_solution() calls."""
    for exercise in ex.EXERCISES.values():
        code = exercise.solution_code
        assert code == solutions.cell_code(getattr(solutions, exercise.name))
        assert not code.startswith(("def ", '"""')) and "return" not in code
        assert f"{exercise.variable} = " in code
    import inspect

    assert "exec(" not in inspect.getsource(ex) and "_distribute_strategy" not in inspect.getsource(ex)


@pytest.fixture
def notebook_shell():
    """A real IPython shell, as in a notebook kernel: get_ipython() answers, user_ns is its namespace."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_check_without_arguments_finds_the_variable_in_the_notebook(notebook_shell, capsys):
    accelerator = ftl.detect_accelerator(verbose=False)
    notebook_shell.user_ns.update(transfer_model=transfer(trainable=True), accelerator=accelerator,
                                  IMAGE_SIZE=SIZE)
    ex.transfer_model.check()
    assert capsys.readouterr().out.strip() == ex.BACKBONE_TRAINABLE
    solution = run_solution(ex.transfer_model, accelerator)
    notebook_shell.user_ns["transfer_model"] = solution
    ex.transfer_model.check()
    assert capsys.readouterr().out.strip() == ex.CORRECT.format(what=ex.transfer_model.what)
    assert ex.transfer_model.or_solution() is solution  # the learner's own model goes on
    ex.transfer_model.check(transfer(units=3))  # an explicit argument still wins
    assert capsys.readouterr().out.strip() == ex.WRONG_UNITS.format(units=3, classes=5)


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_check_of_a_variable_the_notebook_lacks_says_which_cell_to_run(notebook_shell, capsys):
    from flowers_tl import learner_errors

    ex.transfer_model.check()
    assert capsys.readouterr().out.strip() == learner_errors.NOT_DEFINED.format(variable="transfer_model")
    ex.baseline_fit.check()
    assert capsys.readouterr().out.strip() == learner_errors.NOT_DEFINED.format(variable="history")
    notebook_shell.user_ns.update(accelerator=ftl.detect_accelerator(verbose=False), IMAGE_SIZE=SIZE)
    model = ex.transfer_model.or_solution()  # nothing to hand on: the course's solution instead
    assert capsys.readouterr().out.strip() == ex.USING_COURSE_MODEL.format(why=ex.WHY_NOT_ATTEMPTED)
    assert ex.transfer_model.evaluate(model).ok is True


def test_check_outside_a_notebook_asks_for_the_variable():
    with pytest.raises(ftl.ConfigError, match="pass `transfer_model`"):
        ex.transfer_model.check()


def test_blank_lets_a_half_filled_cell_run_but_not_decide():
    """The playground's stub runs with blanks; using a blank as a value says what to do."""
    accelerator = ftl.detect_accelerator(verbose=False)
    namespace = {"____": ____, "keras": keras, "ftl": ftl, "IMAGE_SIZE": SIZE, "accelerator": accelerator}
    exec(ex.transfer_model.stub, namespace)
    assert ex.is_blank(namespace["transfer_model"])
    with pytest.raises(ex.BlankError, match="replace it"):
        bool(____)
    with pytest.raises(ex.BlankError):
        keras.layers.Flatten().trainable = ____
    assert repr(____) == "____"


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_or_solution_hands_on_the_learners_model_only_when_it_passes(capsys):
    """What is handed on always agrees with the verdict: a wrong model is replaced, saying so."""
    accelerator = ftl.detect_accelerator(verbose=False)
    model = ex.transfer_model.or_solution(____, accelerator, SIZE)
    assert capsys.readouterr().out.strip() == ex.USING_COURSE_MODEL.format(why=ex.WHY_NOT_ATTEMPTED)
    assert ex.transfer_model.evaluate(model, accelerator).ok is True
    wrong = transfer(units=3)
    replaced = ex.transfer_model.or_solution(wrong, accelerator, SIZE)
    assert replaced is not wrong and ex.transfer_model.evaluate(replaced, accelerator).ok is True
    assert capsys.readouterr().out.strip() == ex.USING_COURSE_MODEL.format(why=ex.WHY_INCORRECT)
    mine = run_solution(ex.transfer_model, accelerator)
    assert ex.transfer_model.or_solution(mine, accelerator, SIZE) is mine
    assert capsys.readouterr().out == ""


def test_course_pace_quick_mode_uses_a_few_real_shards(real_data_pattern, monkeypatch):
    monkeypatch.delenv(pace.FAST_ENV_VARIABLE, raising=False)
    assert pace.course_pace() == pace.FULL_PACE and pace.FULL_PACE.epochs >= 5
    split = ftl.split_shards(real_data_pattern)
    assert pace.FULL_PACE.data(split) is split
    monkeypatch.setenv(pace.FAST_ENV_VARIABLE, "1")
    quick_pace = pace.course_pace()
    assert quick_pace.fast and quick_pace.epochs == 1
    quick = quick_pace.data(split)
    assert quick.training_shards == split.training_shards[:1]
    assert quick.validation_shards == split.validation_shards[:1]
    assert 0 < quick.training_images < split.training_images
    assert not set(quick.training_shards) & set(quick.validation_shards)


SCOPE_SCRIPT = textwrap.dedent("""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import flowers_tl as ftl
    from flowers_tl import exercises as ex

    accelerator = ftl.detect_accelerator(verbose=False)
    assert accelerator.replicas == 2, accelerator
    print("IN_SCOPE:", ex.transfer_model.evaluate(ex.transfer_model.solution_model(accelerator, [96, 96]),
                                                  accelerator))

    import contextlib, types  # the same solution with its `with accelerator.scope():` doing nothing
    no_scope = types.SimpleNamespace(scope=contextlib.nullcontext)
    outside = ex.transfer_model.solution_model(no_scope, [96, 96])
    print("OUTSIDE:", ex.transfer_model.evaluate(outside, accelerator))

    # the backbone made outside the scope, the Sequential inside: its variables are not mirrored
    backbone = keras.applications.MobileNetV2(input_shape=[96, 96, 3], include_top=False, weights=None)
    backbone.trainable = False
    with accelerator.scope():
        model = keras.Sequential([keras.Input(shape=[96, 96, 3]), keras.layers.Rescaling(1 / 127.5, offset=-1),
                                  backbone, keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print("BACKBONE_OUTSIDE:", ex.transfer_model.evaluate(model, accelerator))
""")


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_scope_check_with_a_real_mirrored_strategy_on_two_cpus():
    """Logical devices must be set before TensorFlow starts, hence a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", SCOPE_SCRIPT], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["IN_SCOPE"] == ex.CORRECT.format(what=ex.transfer_model.what)
    assert lines["OUTSIDE"] == ex.NOT_IN_SCOPE.format(replicas=2)
    assert lines["BACKBONE_OUTSIDE"] == ex.NOT_IN_SCOPE.format(replicas=2)


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_check_after_a_crashed_cell_says_not_finished_and_grades_nothing(capsys):
    """The notebook hook reports each cell run; a crashed attempt is never graded, even if the
    variable still holds an older (here: correct) model."""
    solution = run_solution(ex.transfer_model)
    crashed_cell = "with accelerator.scope():\n    pretrained_model.trainable = ____\n    transfer_model = ..."
    attempts.record_cell_run(crashed_cell, finished=False)
    try:
        ex.transfer_model.check(solution)
        assert capsys.readouterr().out.strip() == ex.NOT_FINISHED
        accelerator = ftl.detect_accelerator(verbose=False)
        assert ex.transfer_model.or_solution(solution, accelerator, SIZE) is not solution  # the course's instead
        assert capsys.readouterr().out.strip() == ex.USING_COURSE_MODEL.format(why=ex.WHY_NOT_FINISHED)
        attempts.record_cell_run("ftl.exercises.transfer_model.check(transfer_model, accelerator)", finished=False)
        ex.transfer_model.check(solution)  # a crash elsewhere does not count as this exercise's attempt
        assert capsys.readouterr().out.strip() == ex.NOT_FINISHED
    finally:
        attempts.record_cell_run(crashed_cell, finished=True)
    ex.transfer_model.check(solution)
    assert capsys.readouterr().out.strip().startswith("Correct")


def test_train_trains_what_it_is_given_and_keeps_its_learning_rate(real_data_pattern):
    """No side channel from the checks: a model that failed its check is trained all the same (the
    notebook hands on the course's model instead); a cosine schedule is only used when asked for, and
    the compiled rate is put back, so a second `train` learns as the first did."""
    small_split = ftl.split_shards(real_data_pattern.replace("*.tfrec", "flowers0[0-1]-*.tfrec"), 1)
    model = keras.Sequential([keras.Input(shape=[32, 32, 3]), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(5, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["acc"])
    ex.baseline_model.check(model)  # 32x32 inputs and a plain model: it does not matter what the check said
    first = ftl.train(model, small_split, epochs=2, batch_size=8, verbose=0, cosine_decay=True)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)
    second = ftl.train(model, small_split, epochs=2, batch_size=8, verbose=0)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)
    assert first.final_val_accuracy >= 0 and len(ftl.validation_accuracy(second)) == 2  # "acc" is found


@pytest.mark.usefixtures("real_data")  # the solutions load the real MobileNetV2 weights
def test_messages_in_russian(capsys):
    ftl.set_language("ru")
    try:
        ex.transfer_model.check(transfer(trainable=True))
        assert capsys.readouterr().out.strip() == RUSSIAN.gettext(ex.BACKBONE_TRAINABLE)
        ex.transfer_model.check(run_solution(ex.transfer_model))
        assert capsys.readouterr().out.strip() == RUSSIAN.gettext(ex.CORRECT).format(
            what=RUSSIAN.gettext(ex.transfer_model.what))
        ex.transfer_model.hint()
        assert capsys.readouterr().out.startswith("Подсказка 1 из 2: include_top=False")
        ex.transfer_model.solution()
        assert "# оставляем признаки ImageNet как есть" in capsys.readouterr().out
    finally:
        ftl.set_language("en")
    with pytest.raises(ValueError, match="Unknown language 'fr'"):
        ftl.set_language("fr")


def test_fit_check_reads_the_history_of_model_fit():
    import numpy as np
    import tensorflow as tf

    def compiled(metrics=("accuracy",)):
        model = keras.Sequential([keras.Input(shape=[4]), keras.layers.Dense(5, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=list(metrics))
        return model

    rng = np.random.default_rng(0)
    images, labels = rng.normal(size=(8, 4)), np.arange(8) % 5
    validation = tf.data.Dataset.from_tensor_slices((rng.normal(size=(10, 4)), np.arange(10) % 5)).batch(4)
    training = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    model = compiled()
    history = model.fit(training, epochs=2, validation_data=validation, verbose=0)
    fit = ex.baseline_fit
    assert str(fit.evaluate(history, 2, 2, validation)) == ex.CORRECT.format(what=fit.what)
    assert str(fit.evaluate(history, 3, 2, validation)) == ex.WRONG_EPOCHS[1].format(trained=2, epochs=3)
    one_epoch = compiled().fit(training, epochs=1, validation_data=validation, verbose=0)
    assert str(fit.evaluate(one_epoch, 3, 2, validation)) == ex.WRONG_EPOCHS[0].format(trained=1, epochs=3)
    assert str(fit.evaluate(history, 2, 5, validation)) == ex.WRONG_STEPS[1].format(steps=2, batches=5)
    unvalidated = compiled().fit(training, epochs=2, verbose=0)
    assert str(fit.evaluate(unvalidated, 2, 2, validation)) == ex.NO_VALIDATION
    on_training_photos = compiled().fit(training, epochs=2, validation_data=training, verbose=0)
    verdict = fit.evaluate(on_training_photos, 2, 2, validation)
    assert verdict.ok is False and verdict.message.startswith("The history's validation accuracy (")
    assert fit.evaluate(compiled(["acc"]).fit(training, epochs=2, validation_data=validation, verbose=0),
                        2, 2, validation).ok is True  # Keras logs val_acc: a correct variant
    no_metric = compiled(()).fit(training, epochs=2, validation_data=validation, verbose=0)
    assert str(fit.evaluate(no_metric, 2, 2, validation)) == ex.FIT_MODEL_PROBLEM.format(problem=ex.NO_ACCURACY)
    assert str(fit.evaluate(____, 2, 2, validation)) == ex.NOT_ATTEMPTED
    assert str(fit.evaluate(history.history, 2, 2, validation)) == \
        ex.NOT_A_HISTORY.format(variable="history", kind="dict")


def test_verdicts_are_coloured_in_a_notebook_and_plain_elsewhere(capsys):
    right, wrong = ex.Verdict(True, "Correct: <yes>"), ex.Verdict(False, "No & no")
    assert right._repr_mimebundle_() == {"text/plain": "Correct: <yes>",
                                         "text/html": '<span style="color:#33cc33">Correct: &lt;yes&gt;</span>'}
    assert wrong._repr_mimebundle_()["text/html"] == '<span style="color:#cc3333">No &amp; no</span>'
    assert ex.Verdict(None, "Hint", "hint")._repr_mimebundle_()["text/html"].startswith('<span style="color:#3366cc">')
    wrong.show()
    assert capsys.readouterr().out == "No & no\n"  # outside a notebook: the sentence, unchanged


def test_check_cells_offer_hint_and_solution_commented_out():
    for exercise in ex.EXERCISES.values():
        lines = exercise.check_call().splitlines()
        assert lines[0] == f"ftl.exercises.{exercise.name}.check()"
        assert lines[1].startswith(f"# ftl.exercises.{exercise.name}.hint(1)")
        assert lines[2].startswith(f"# ftl.exercises.{exercise.name}.solution()")
