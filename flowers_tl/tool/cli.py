"""The `flowers-tl` command line: train, evaluate, predict, convert, download, info.

Its errors, notes and reports speak the language of the environment, as gettext programs do
(LANGUAGE, LC_ALL, LC_MESSAGES, LANG: `LANG=ru_RU.UTF-8 flowers-tl ...` answers in Russian).
The `--help` texts stay English, as argparse's own words around them (usage, options) do:
a help half in one language and half in another reads worse than one in English.

Conventions: results go to stdout, notes and progress to stderr. Exit status 0 on
success, 1 when the command ran and failed (a `FlowersTLError`, printed as one line on
stderr instead of a traceback), 2 for a usage error (argparse's), 130 when interrupted.
`--help` and `--version` need no TensorFlow: each command imports what it uses.
"""

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import platform
import shutil
import sys
from typing import Optional

from .. import __version__, rules
from ..errors import ConfigError, FlowersTLError, OutputExistsError, first_line
from .files import (CannotWrite, OutputClaim, interrupt_on_signals, make_output_folder, write_text_atomically,
                    written_atomically)
from ..messages import N_, N_plural, say, say_n, use_environment_language
from ..records import DEFAULT_IMAGE_SIZE

RUNTIME_ERROR = 1  # the command ran and failed; argparse uses 2 for usage errors
INTERRUPTED = 130
KERAS_BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                  "openvino": "openvino"}  # KERAS_BACKEND value: the package it needs

DEFAULT_OUTPUT = "flowers_tl_run"
DEFAULT_TOP_LOSSES_DIR = "top_losses"
BACKUP_FOLDER = "backup"
TRAINING_LOG = "training_log.csv"
FINE_TUNE_LOG = "fine_tune_log.csv"
RESUME_SETTINGS = ("data", "weights", "image_size", "batch_size", "head", "validation_shards", "seed", "fast",
                   "fine_tune_from")
FINE_TUNE_SETTINGS = ("fine_tune_epochs", "fine_tune_rate")  # matter only when fine-tuning

# --- What the command line says (English here; Russian in flowers_tl/locale) -----------------
UNRECOGNIZED = N_("unrecognized arguments: {arguments}")
ERROR_LINE = N_("flowers-tl {command}: error: {error}")
INTERRUPTED_LINE = N_("flowers-tl {command}: interrupted")
INTERRUPTED_BECAUSE = N_("flowers-tl {command}: interrupted: {why}")
NOT_A_BACKEND = N_("KERAS_BACKEND='{backend}' is not a Keras backend: set it to one of {backends} (the course uses "
                   "tensorflow or jax), or unset it.")
BACKEND_NOT_INSTALLED = N_("KERAS_BACKEND='{backend}' but the package '{package}' is not installed: install it "
                           "(JAX: pip install -e \".[jax]\"), or unset KERAS_BACKEND to use tensorflow.")
MODEL_EXISTS = N_("'{path}' exists; pass --overwrite to replace it, or choose another --output folder")
DATA_NOTE = N_("Data: {pattern}: {split}")
CLASSES_NOTE = N_("Classes: {classes} (read from the shards' labels)")
RUN_NOT_WRITTEN = N_("could not write the run into '{output}' ({reason}); free some space or choose another --output, "
                     "then run the same command again")
RUN_NOT_WRITTEN_RESUMABLE = N_("could not write the run into '{output}' ({reason}); free some space or choose "
                               "another --output, then run the same command again (it resumes from '{backup}')")
FINE_TUNING_NOTE = N_("Head: validation accuracy {accuracy:.4f}. Fine-tuning from block {block}:")
TRAINED = N_("Validation accuracy {final:.4f} (best {best:.4f}) in {seconds:.1f} s; model, metrics and curves in "
             "{output}/")
RESUMING = N_("Resuming the interrupted run saved in {backup}/")
EVALUATED = N_plural("{images} image, accuracy {accuracy:.4f}", "{images} images, accuracy {accuracy:.4f}")
NOT_AVAILABLE = N_("n/a")
CONFUSION_HEADING = N_("confusion matrix (rows: true class, columns: predicted)")
TOP_LOSSES_HEADING = N_plural("the {count} photo with the highest loss (drawn in {folder}/top_losses.png):",
                              "the {count} photos with the highest loss (drawn in {folder}/top_losses.png):")
TOP_LOSS_ROW = N_("  #{index:<5} true {true:<11} predicted {predicted:<11} ({probability:.1%}), loss {loss:.2f}")
OTHER_CLASSES = N_("model '{path}' knows the classes {model_classes}, but the shards '{pattern}' hold "
                   "{data_classes}: evaluate a model on shards of the classes it was trained on (same folders, "
                   "same order)")
NOT_ONE_INPUT = N_("a picture classifier has one input and one output (pictures in, class probabilities out), but "
                   "model '{path}' has inputs: {inputs}, outputs: {outputs}")
NOT_PICTURE_INPUTS = N_("model '{path}' takes inputs of shape {shape}, not colour pictures (height, width, 3)")
NOT_ONE_ROW = N_("model '{path}' outputs shape {shape}, not one row of class probabilities per picture")
NO_CLASS_NAMES = N_plural("model '{path}' has {outputs} output and carries no class names, so its answers cannot be "
                          "named: a classifier of the course's {classes} classes has {classes} outputs, one "
                          "probability per class (train one with `flowers-tl train`)",
                          "model '{path}' has {outputs} outputs and carries no class names, so its answers cannot "
                          "be named: a classifier of the course's {classes} classes has {classes} outputs, one "
                          "probability per class (train one with `flowers-tl train`)")
ANY_SIZE_NOTE = N_("Note: model '{path}' accepts any picture size; using {width}x{height}.")
SKIPPED = N_("flowers-tl predict: skipped: {problem}")
VERSIONS = N_("Python {python}, TensorFlow {tensorflow}, Keras {keras}")
JAX_VERSION = N_("JAX {version}")
JAX_MISSING = N_("JAX not installed")
DATA_PATTERN = N_("Data pattern: {pattern}")
WEIGHTS = N_("Weights: {weights}")
NOT_A_FLOWERS_MODEL = N_("'{path}' is not a Keras model saved by flowers-tl: {reason}")
GIVE_INSIDE = N_("give '{inside}'")
SAVED_MODEL_FOLDER = N_("Keras 3 loads only .keras files; save it with model.save('model.keras')")
GIVE_THE_FILE = N_("give the .keras file")
MODEL_IS_A_FOLDER = N_("model '{path}' is a folder, not a .keras file: {hint}")
NO_MODEL_FILE = N_("model file '{path}' does not exist (train one with `flowers-tl train`)")
MODEL_NOT_REGULAR = N_("model '{path}' is not a regular file (a device, pipe or socket); give a .keras file")
NOT_A_ZIP = N_plural("'{path}' is not a Keras model saved by flowers-tl: its {size} byte is not a zip archive, as "
                     ".keras files are, so it is truncated or not a model; copy or save it again",
                     "'{path}' is not a Keras model saved by flowers-tl: its {size} bytes are not a zip archive, "
                     "as .keras files are, so it is truncated or not a model; copy or save it again")


def main(argv=None) -> int:
    """Entry point of the console script and of `python -m flowers_tl`."""
    from ..quiet import install_import_hook, set_defaults

    set_defaults()  # TensorFlow's start-up lines, whichever command loads it first
    install_import_hook()
    _tolerant_output()
    use_environment_language()
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its usage line
        parser.commands[args.command].error(say(UNRECOGNIZED, arguments=" ".join(unknown)))
    try:
        check_keras_backend()
        return args.run(args) or 0
    except FlowersTLError as error:
        print(say(ERROR_LINE, command=args.command, error=error), file=sys.stderr)
        return RUNTIME_ERROR
    except KeyboardInterrupt as interruption:  # convert says how far it got
        said = str(interruption) if type(interruption) is not KeyboardInterrupt else ""
        print(say(INTERRUPTED_BECAUSE, command=args.command, why=said) if said
              else say(INTERRUPTED_LINE, command=args.command), file=sys.stderr)
        return INTERRUPTED


def _tolerant_output() -> None:
    """Print what the locale's encoding cannot show (Cyrillic under LC_ALL=C) as backslash escapes.

    Python writes stdout and stderr in the locale's encoding, strictly: one class name or path
    it cannot encode would raise UnicodeEncodeError at a print and lose every answer computed.
    """
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def check_keras_backend() -> None:
    """ConfigError naming KERAS_BACKEND when it names a backend that does not exist or is not installed.

    Checked before Keras is imported, which would otherwise fail with a traceback.
    """
    backend = os.environ.get("KERAS_BACKEND")
    if not backend:
        return
    if backend not in KERAS_BACKENDS:
        raise ConfigError(say(NOT_A_BACKEND, backend=backend, backends=", ".join(sorted(KERAS_BACKENDS))))
    if importlib.util.find_spec(KERAS_BACKENDS[backend]) is None:
        raise ConfigError(say(BACKEND_NOT_INSTALLED, backend=backend, package=KERAS_BACKENDS[backend]))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowers-tl", allow_abbrev=False,
        description="Transfer learning on the five-class flowers TFRecords with a frozen MobileNetV2.",
        epilog="Results go to stdout, notes and progress to stderr. Exit status: 0 done, 1 the command "
               "failed (one error line on stderr), 2 usage error, 130 interrupted. Messages follow the "
               "environment's language (LANGUAGE, LC_ALL, LANG; e.g. LANGUAGE=ru for Russian).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    parser.commands = commands.choices  # {name: its parser}, for `main` to report a command's own errors

    train = _command(commands, "train", "train a model and save it with its metrics",
                     "Train the course's model (a frozen ImageNet MobileNetV2 and a small head) on the flowers "
                     "shards, or on shards of your own photos, and save model.keras, metrics.json and the "
                     "training curves in --output.")
    _add_data_arguments(train)
    train.add_argument("--weights", help="'imagenet', a .h5 path or 'none' (default: $FLOWERS_TL_WEIGHTS or imagenet)")
    train.add_argument("--image-size", type=_rule(rules.image_size, "--image-size"), default=DEFAULT_IMAGE_SIZE,
                       help=f"square input size in pixels (default {DEFAULT_IMAGE_SIZE})")
    train.add_argument("--epochs", type=_rule(rules.at_least, "--epochs"), default=10,
                       help="passes over the training images (default 10)")
    train.add_argument("--batch-size", type=_rule(rules.at_least, "--batch-size"), default=64,
                       help="per replica (default 64)")
    train.add_argument("--head", choices=["flatten", "gap"], default="flatten",
                       help="Flatten (the course, default) or GlobalAveragePooling")
    train.add_argument("--seed", type=_rule(rules.seed, "--seed"), default=None,
                       help="random seed, for a run that can be repeated (default: a different run each time)")
    train.add_argument("--output", default=DEFAULT_OUTPUT, help=f"output folder (default {DEFAULT_OUTPUT})")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --output")
    train.add_argument("--no-fast", dest="fast", action="store_false",
                       help="recompute the frozen backbone every epoch (the original course's way)")
    tuning = train.add_argument_group(
        "fine-tuning", "after the head, let MobileNetV2's top blocks learn too at a low rate; blocks below "
        "stay frozen and are computed once per photo, so this takes minutes on a CPU")
    tuning.add_argument("--fine-tune-from", type=_rule(rules.block, "--fine-tune-from"), metavar="BLOCK",
                        help="first MobileNetV2 block to fine-tune, 1..16 (13: the top 4 blocks; default: "
                             "no fine-tuning)")
    tuning.add_argument("--fine-tune-epochs", type=_rule(rules.at_least, "--fine-tune-epochs"), default=8,
                        help="epochs of fine-tuning after the head's epochs (default 8)")
    tuning.add_argument("--fine-tune-rate", type=_rule(rules.above_zero, "--fine-tune-rate", float), default=1e-4,
                        help="Adam learning rate, lowered along a cosine (default 1e-4)")
    train.set_defaults(run=_train)

    evaluate = _command(commands, "evaluate", "accuracy and confusion matrix of a saved model",
                        "Score a model saved by `train` on the validation shards (or all of them): accuracy, "
                        "per-class accuracy, confusion matrix, and optionally the photos it gets most wrong.")
    evaluate.add_argument("model", help="a .keras file written by `train`")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--all-shards", action="store_true",
                          help="evaluate every matching shard, not only the validation shards")
    evaluate.add_argument("--flip-test", action="store_true",
                          help="average each photo's and its mirror image's prediction (test-time flips)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    evaluate.add_argument("--top-losses", type=_rule(rules.at_least, "--top-losses"), metavar="N",
                          help="also list the N photos with the highest loss and draw them, with heatmaps, "
                               "in --output-dir")
    evaluate.add_argument("--output-dir", default=DEFAULT_TOP_LOSSES_DIR,
                          help=f"folder for top_losses.png (default {DEFAULT_TOP_LOSSES_DIR})")
    evaluate.set_defaults(run=_evaluate)

    predict = _command(commands, "predict", "classify picture files with a saved model",
                       "Classify picture files with a model saved by `train`: one line per picture (or one "
                       "JSON document) on stdout, skipped files named on stderr.")
    predict.add_argument("model", help="a .keras file written by `train`")
    predict.add_argument("images", nargs="+", help="picture files (JPEG, PNG...)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument("--explain", metavar="OUT_DIR",
                         help="also write one PNG per picture to OUT_DIR: the picture, its class "
                              "probabilities and where the model looks (Grad-CAM heatmap)")
    predict.set_defaults(run=_predict)

    convert = _command(commands, "convert", "photos (one folder per class) or tf_flowers to TFRecords",
                       "Turn a folder of photos, one sub-folder per class, or tensorflow-datasets' tf_flowers "
                       "into .tfrec shards that `train` and `evaluate` read.")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", help="a folder with one sub-folder of photos per class")
    source.add_argument("--tf-flowers", action="store_true", help="tensorflow-datasets' tf_flowers")
    convert.add_argument("--output", required=True, help="folder for the .tfrec shards")
    convert.add_argument("--image-size", type=_rule(rules.image_size, "--image-size"), default=DEFAULT_IMAGE_SIZE,
                         help=f"square size of the pictures in the shards, in pixels (default {DEFAULT_IMAGE_SIZE})")
    convert.add_argument("--shards", type=_rule(rules.at_least, "--shards"), default=16,
                         help="number of .tfrec files to write (default 16)")
    convert.add_argument("--seed", type=int, default=42,
                         help="seed of the shuffle that spreads the classes over the shards (default 42)")
    convert.add_argument("--overwrite", action="store_true", help="replace shards already in --output")
    convert.set_defaults(run=_convert)

    download = _command(commands, "download", "copy the course's shards and weights once, for offline work",
                        "Copy the course's shards (or those of --data) and MobileNetV2's ImageNet weights into "
                        "--output while online, then print the two export lines that point the course at the copy.")
    download.add_argument("--output", required=True, help="folder for the shards and the weights file")
    download.add_argument("--data", help="shard glob to copy, local or gs:// (default: the course bucket)")
    download.add_argument("--weights", help="a local .h5 weights file to copy (default: download Keras' file)")
    download.set_defaults(run=_download)

    info = _command(commands, "info", "versions, Keras backend and accelerator",
                    "Print the versions of Python, TensorFlow, Keras and JAX, the data pattern, the weights "
                    "and the accelerator the other commands would use.")
    info.set_defaults(run=_info)
    return parser


def _command(commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A sub-command's parser: `summary` in the top-level help, `description` atop its own `--help`,
    and no abbreviated options (`--epoch` would silently be taken for `--epochs`)."""
    return commands.add_parser(name, help=summary, description=description, allow_abbrev=False)


def _rule(rule, option: str, kind=int):
    """An argparse `type=` that reads `kind` and checks it with a `rules` function, so a value the
    library would refuse is a usage error (exit status 2) before TensorFlow is imported."""
    def read(text: str):
        value = kind(text)  # ValueError: argparse says "invalid int value: 'many'"
        try:
            return rule(value, option)
        except FlowersTLError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = kind.__name__
    return read


def _add_data_arguments(parser) -> None:
    parser.add_argument("--data", help="shard glob, local or gs:// (default: $FLOWERS_TL_DATA or the course bucket)")
    parser.add_argument("--validation-shards", type=_rule(rules.at_least, "--validation-shards"), default=3,
                        help="the first N shards are the validation set (default 3)")


def _notes_on_stderr(command):
    """Run `command(args)` with stdout sent to stderr, so the notes and Keras' progress bars printed
    by the library ("Running on CPU...", the feature pass) stay off stdout; `args.results` is the
    real stdout, where the command prints its results alone."""
    @functools.wraps(command)
    def run(args):
        args.results = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return command(args)

    return run


@_notes_on_stderr
def _train(args) -> int:
    """`train`; SIGTERM and SIGINT end it with exit status 130 and one line (`main`), even in a background
    job that inherited SIGINT ignored."""
    with interrupt_on_signals():
        return _run_train(args)


def _run_train(args) -> int:
    from .. import data, model as flowers_model, sources
    from . import cluster, runs

    model_path = os.path.join(args.output, "model.keras")
    if os.path.exists(model_path) and not args.overwrite:
        raise OutputExistsError(say(MODEL_EXISTS, path=model_path))
    accelerator = cluster.choose_accelerator()
    split = sources.split_shards(args.data, args.validation_shards)
    classes = data.class_names(split.validation_shards + split.training_shards)
    photos_per_step = accelerator.global_batch_size(args.batch_size)
    if args.fast:  # MobileNetV2 sees the photos once, in small batches; training then uses its activations
        from ..frozen import ACTIVATION_BATCH_SIZE

        photos_per_step = min(photos_per_step, ACTIVATION_BATCH_SIZE)
    flowers_model.check_memory(args.image_size, photos_per_step)
    print(say(DATA_NOTE, pattern=data.data_pattern(args.data), split=split), file=sys.stderr)
    if classes != data.CLASSES:
        print(say(CLASSES_NOTE, classes=", ".join(classes)), file=sys.stderr)
    made_output = not os.path.exists(args.output)
    make_output_folder(args.output, "--output")
    backup = os.path.join(args.output, BACKUP_FOLDER)
    try:
        with OutputClaim(args.output):  # a second run into this folder is refused by name
            runs.start_clean(args.output, backup)
            try:
                with _writing_into(args.output), data.checking_classes(classes):
                    _train_and_save(args, accelerator, split, classes, model_path)
            except KeyboardInterrupt as stop:
                raise runs.interrupted(stop, backup) from None
            except Exception:
                if os.path.isdir(backup):
                    runs.keep_usable_backup(backup)
                raise
    finally:
        if made_output and os.path.isdir(args.output) and not os.listdir(args.output):
            os.rmdir(args.output)  # a run that failed before writing anything leaves no empty folder
    return 0


@contextlib.contextmanager
def _writing_into(output: str):
    """Turn a failed write (full disk, quota, file size limit, read-only) into one ConfigError naming
    --output; the half-written files of the run are removed (saves and text files are atomic)."""
    try:
        yield
    except (OSError, CannotWrite) as error:
        from .runs import keep_usable_backup

        first = error.reason if isinstance(error, CannotWrite) else first_line(error)
        backup = os.path.join(output, BACKUP_FOLDER)
        kept = keep_usable_backup(backup)
        raise ConfigError(say(RUN_NOT_WRITTEN_RESUMABLE if kept else RUN_NOT_WRITTEN, output=output, reason=first,
                              backup=backup)) from None


def _train_and_save(args, accelerator, split, classes, model_path) -> None:
    """Build, train (and fine-tune), save the model and write the metrics, log and curves."""
    from .. import model as flowers_model, plots, training

    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)  # before building: the head's first weights use it
    with accelerator.scope():
        model = flowers_model.build_model(args.image_size, head=args.head, weights=args.weights,
                                          class_names=classes)
        flowers_model.record_shards(model, split)  # evaluate then knows which photos it learned from
        flowers_model.compile_model(model, accelerator=accelerator)
    result = training.train(model, split, epochs=args.epochs, batch_size=args.batch_size,
                            accelerator=accelerator, seed=args.seed, fast=args.fast, cosine_decay=True,
                            callbacks=_resume_callbacks(args, split), verbose=2)
    result.history = _history_from_log(os.path.join(args.output, TRAINING_LOG))  # resumed runs too
    head_accuracy = result.final_val_accuracy
    if args.fine_tune_from is not None:
        print(say(FINE_TUNING_NOTE, accuracy=head_accuracy, block=args.fine_tune_from), file=sys.stderr)
        result = _fine_tune(model, split, accelerator, args, result)
    with written_atomically(model_path, suffix=".keras") as partial:  # never a half-saved model
        model.save(partial)
    metrics = {
        "final_val_accuracy": result.final_val_accuracy,
        "best_val_accuracy": result.best_val_accuracy,
        "val_accuracy_per_epoch": [float(v) for v in result.history["val_accuracy"]],
        "wall_time_s": round(result.wall_time_s, 2),
        "feature_time_s": round(result.feature_time_s, 2),
        "fast_path": result.fast_path,
        "frozen_until": result.frozen_until,
        "head_val_accuracy": head_accuracy,
        "fine_tune_from": args.fine_tune_from,
        "fine_tune_epochs": args.fine_tune_epochs if args.fine_tune_from is not None else 0,
        "epochs": args.epochs, "image_size": args.image_size, "head": args.head,
        "batch_size_per_replica": args.batch_size, "replicas": accelerator.replicas,
        "training_images": split.training_images, "validation_images": split.validation_images,
        "seed": args.seed, "accelerator": accelerator.describe(),
    }
    metrics["classes"] = classes
    write_text_atomically(os.path.join(args.output, "metrics.json"), json.dumps(metrics, indent=2))
    write_text_atomically(os.path.join(args.output, "history.json"),
                          json.dumps({k: [float(v) for v in vs] for k, vs in result.history.items()}, indent=2))
    with written_atomically(os.path.join(args.output, "curves.png"), suffix=".png") as partial:
        plots.display_training_curves(result.history, fine_tune_start=None if args.fine_tune_from is None
                                      else args.epochs + 1).savefig(partial)
    shutil.rmtree(os.path.join(args.output, BACKUP_FOLDER), ignore_errors=True)  # done: nothing to resume
    print(say(TRAINED, final=result.final_val_accuracy, best=result.best_val_accuracy, seconds=result.wall_time_s,
              output=args.output), file=args.results)


def _fine_tune(model, split, accelerator, args, head_result):
    """Fine-tune the top blocks (resumable like the head); one result for both stages."""
    from .. import training

    tuned = training.fine_tune(model, split, from_block=args.fine_tune_from, epochs=args.fine_tune_epochs,
                               learning_rate=args.fine_tune_rate, batch_size=args.batch_size,
                               accelerator=accelerator, seed=args.seed, fast=args.fast,
                               callbacks=_resume_callbacks(args, split, FINE_TUNE_LOG, "fine_tune"), verbose=2)
    tuned_history = _history_from_log(os.path.join(args.output, FINE_TUNE_LOG))
    tuned.history = {name: head_result.history[name] + tuned_history[name] for name in tuned_history}
    tuned.wall_time_s += head_result.wall_time_s
    tuned.feature_time_s += head_result.feature_time_s
    return tuned


def _resume_callbacks(args, split, log_name: str = TRAINING_LOG, stage: str = "") -> list:
    """Keras callbacks that make an interrupted `train` resumable: a backup per epoch and a CSV log.

    While `<output>/backup` exists, the same command continues from the last
    finished epoch (Keras `BackupAndRestore`); it is removed once the model is saved.
    The fine-tuning stage keeps its own log and backup (`stage`) next to the head's. The settings
    recorded are the real inputs (`runs.inputs`), so a resume with other data or weights is refused.
    """
    import keras

    from . import runs

    backup = os.path.join(args.output, BACKUP_FOLDER)
    settings_path = os.path.join(backup, "settings.json")
    log_path = os.path.join(args.output, log_name)
    names = RESUME_SETTINGS + (FINE_TUNE_SETTINGS if args.fine_tune_from is not None else ())
    settings = runs.inputs(args, names, split.validation_shards + split.training_shards)
    if os.path.isfile(settings_path):
        with open(settings_path, encoding="utf-8") as handle:
            saved = json.load(handle)
        runs.check_same_inputs(saved, settings, backup)
        if not stage:  # said once, for the head
            print(say(RESUMING, backup=backup), file=sys.stderr)
    else:
        os.makedirs(backup, exist_ok=True)
        write_text_atomically(settings_path, json.dumps(settings))
        for old_log in (TRAINING_LOG, FINE_TUNE_LOG):  # a fresh run starts fresh logs (a dangling link too)
            if os.path.lexists(os.path.join(args.output, old_log)):
                os.remove(os.path.join(args.output, old_log))
    return [runs.CSVLog(log_path),
            keras.callbacks.BackupAndRestore(os.path.join(backup, stage), double_checkpoint=True,
                                             delete_checkpoint=False)]


def _history_from_log(path: str) -> dict:
    """Per-epoch metrics from the CSV log; the last row of an epoch wins (a resumed run may redo one)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    names = [name for name in next(iter(rows.values())) if name != "epoch"]
    return {name: [float(rows[epoch][name]) for epoch in sorted(rows)] for name in names}


def _evaluate(args) -> int:
    from .. import data, sources, training
    from . import runs
    from ..model import shards_of

    model = _load_model(args.model)
    classes, image_size = _classifier_shape(model, args.model)
    everything = sources.find_shards(args.data)
    _check_same_classes(args.model, classes, data.class_names(everything), data.data_pattern(args.data))
    if args.all_shards:
        shards = everything
    else:
        shards = sources.split_shards(args.data, args.validation_shards).validation_shards
    runs.check_unseen(args.model, shards_of(model), shards, args.all_shards)
    with data.checking_classes(classes):
        drawn = _top_losses(model, shards, args) if args.top_losses is not None else None
        report = training.evaluate(model, shards, image_size=image_size, classes=classes,
                                   flip_test=args.flip_test, progress=_progress_bar(data.count_images(shards)))
    worst = None if drawn is None else _top_loss_rows(drawn, classes)
    if worst is not None:
        report["top_losses"] = worst
    if args.json:
        print(json.dumps(report, indent=2), flush=True)
        return _draw_top_losses(drawn, args.output_dir)
    print(say_n(*EVALUATED, report["images"], images=report["images"], accuracy=report["accuracy"]))
    names = [_one_line(name) for name in report["classes"]]
    for name, value in zip(names, report["per_class_accuracy"].values()):
        print(f"  {name:<11} {say(NOT_AVAILABLE) if value is None else f'{value:.4f}'}")
    width = max(len(c) for c in names)
    print(say(CONFUSION_HEADING))
    print(" " * (width + 1) + " ".join(f"{c[:6]:>6}" for c in names))
    for name, row in zip(names, report["confusion_matrix"]):
        print(f"{name:<{width}} " + " ".join(f"{v:>6}" for v in row))
    if worst is not None:
        print(say_n(*TOP_LOSSES_HEADING, len(worst), count=len(worst), folder=args.output_dir))
        for row in worst:
            print(say(TOP_LOSS_ROW, index=row["index"], true=_one_line(row["true_class"]),
                      predicted=_one_line(row["predicted_class"]), probability=row["probability"], loss=row["loss"]))
    sys.stdout.flush()
    return _draw_top_losses(drawn, args.output_dir)


def _top_losses(model, shards, args) -> list:
    """`evaluate --top-losses N`: the N worst photos, with heatmaps (--output-dir is made first)."""
    from .. import explain

    make_output_folder(args.output_dir, "--output-dir")
    return explain.top_losses(model, shards, args.top_losses, with_heatmaps=True)


def _top_loss_rows(worst, classes) -> list:
    """The report's rows of `explain.top_losses`' photos, one dict per photo."""
    return [{"index": item.index, "true_class": classes[item.true_class],
             "predicted_class": classes[item.predicted_class], "probability": item.probability,
             "true_probability": item.true_probability, "loss": item.loss} for item in worst]


def _draw_top_losses(worst, folder: str) -> int:
    """Draw `worst` (if any) in <folder>/top_losses.png, written safely, after the report is printed; 0."""
    from .. import plots

    if worst is not None:
        figure = plots.display_top_losses(worst)
        with written_atomically(os.path.join(folder, "top_losses.png"), suffix=".png") as partial:
            figure.savefig(partial, format="png")
    return 0


def _check_same_classes(model_path: str, model_classes, data_classes, pattern: str) -> None:
    """ConfigError when the model was trained on other classes than the shards hold (its answers
    would be compared with the wrong names)."""
    if list(model_classes) != list(data_classes):
        raise ConfigError(say(OTHER_CLASSES, path=model_path, model_classes=", ".join(model_classes), pattern=pattern,
                              data_classes=", ".join(data_classes)))


def _progress_bar(total: Optional[int] = None):
    """A callback `done(count, total=None)` that draws Keras' progress bar on stderr (stdout keeps the
    results): the one look of every command's progress, as the feature pass and Keras' epochs have it.

    Keras' live bar is drawn with ANSI colour codes; into a file or a pipe, or under NO_COLOR, the
    bar is one plain line at the end instead. `total` may come with the first call (`convert` knows
    it only once it has listed the photos).
    """
    import keras

    bars = []

    def done(count: int, total_now: Optional[int] = None) -> None:
        if not bars:
            bars.append(keras.utils.Progbar(total_now or total, unit_name="photo",
                                            verbose=1 if _colours_on(sys.stderr) else 2))
        with contextlib.redirect_stdout(sys.stderr):
            bars[0].update(min(count, bars[0].target))

    return done


def _colours_on(stream) -> bool:
    """Whether ANSI colours may be written to `stream`: a terminal, with NO_COLOR unset (no-color.org)
    and a TERM other than 'dumb'."""
    return (hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM") != "dumb")


def _classifier_shape(model, path: str):
    """(class names, (height, width)) of a loaded model, or ConfigError naming what does not fit.

    A course model carries its class names (`model.class_names_of`); one saved before
    that, with the course's five outputs, gets the course's CLASSES. A model whose input
    size is open (None) is given the data's default size, said in a note.
    """
    from ..records import CLASSES
    from ..model import class_names_of

    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(say(NOT_ONE_INPUT, path=path, inputs=len(inputs), outputs=len(outputs)))
    shape, out_shape = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ConfigError(say(NOT_PICTURE_INPUTS, path=path, shape=shape[1:]))
    if len(out_shape) != 2:
        raise ConfigError(say(NOT_ONE_ROW, path=path, shape=out_shape[1:]))
    names = class_names_of(model)
    if names is None and out_shape[-1] == len(CLASSES):
        names = list(CLASSES)
    if names is None:
        raise ConfigError(say_n(*NO_CLASS_NAMES, out_shape[-1], path=path, outputs=out_shape[-1], classes=len(CLASSES)))
    size = (shape[1] or DEFAULT_IMAGE_SIZE, shape[2] or DEFAULT_IMAGE_SIZE)
    if None in shape[1:3]:  # a note: stderr, so stdout keeps only the results
        print(say(ANY_SIZE_NOTE, path=path, width=size[0], height=size[1]), file=sys.stderr)
    return names, size


def _predict(args) -> int:
    """`predict`: each answer is printed as soon as it is known (Ctrl-C or SIGTERM lose none of them);
    the --explain pictures are drawn after every answer is printed, so a write that fails loses no answer."""
    model = _load_model(args.model)
    classes, shape = _classifier_shape(model, args.model)
    if args.explain:
        from .. import explain

        explain.split_at_feature_map(model)  # a model Grad-CAM cannot explain fails before any picture
        make_output_folder(args.explain, "--explain")
    results = []
    with interrupt_on_signals():
        try:
            failures = _answer_each(model, args, classes, shape, results)
        finally:  # interrupted too: the answers computed so far
            if args.json:
                print(json.dumps(results, indent=2), flush=True)
        for row in results if args.explain else ():
            _write_explanation(model, _picture_for(row["image"], *shape), row["explained"])
    return RUNTIME_ERROR if failures else 0


def _answer_each(model, args, classes, shape, results: list) -> int:
    """Classify each picture of `args.images` into `results` (text: printed at once); the number skipped.

    With --explain, each answer names the PNG its picture will be drawn in: <name>.png, and
    <name>_2.png for a second picture of that name (from another folder).
    """
    import numpy as np

    failures, picture_errors, targets = 0, _picture_errors(), set()
    for path in args.images:
        try:
            pixels = _picture_for(path, *shape)
        except picture_errors as error:
            first = first_line(error)
            problem = first if path in first else f"{path!r}: {first}"
            print(say(SKIPPED, problem=problem), file=sys.stderr)
            failures += 1
            continue
        probabilities = np.asarray(model.predict_on_batch(pixels[None]))[0]
        best = int(probabilities.argmax())
        results.append({"image": path, "class": classes[best], "probability": float(probabilities[best])})
        if args.explain:
            results[-1]["explained"] = _explanation_target(path, args.explain, targets)
        if not args.json:
            print(_predict_line(results[-1]), flush=True)
    return failures


def _predict_line(row: dict) -> str:
    """One photo's answer as one line, `picture: class (probability)`, its names made safe by `_one_line`."""
    from .convert import file_name_text

    explained = f" -> {_one_line(file_name_text(row['explained']))}" if "explained" in row else ""
    return f"{_one_line(file_name_text(row['image']))}: {_one_line(row['class'])} ({row['probability']:.1%}){explained}"


def _one_line(name: str) -> str:
    """A name as it is when it reads plainly, else in double quotes with backslash escapes: a class name or
    path holding a newline, a control character, a comma, a quote or ': ' cannot then break the
    one-line-per-item output or be read as two fields."""
    plain = name.isprintable() and name == name.strip() and not any(mark in name for mark in (",", '"', ": "))
    if plain:
        return name
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in quoted) + '"'


def _note(text: str) -> None:
    """Print a note on stderr: stdout holds the results alone (one JSON document with --json)."""
    print(text, file=sys.stderr)


def _explanation_target(path: str, folder: str, taken: set) -> str:
    """<folder>/<name>.png for the picture `path`, or <name>_2.png... when `taken` holds that name already."""
    name = os.path.splitext(os.path.basename(path))[0]
    target, number = os.path.join(folder, f"{name}.png"), 1
    while target in taken:
        number += 1
        target = os.path.join(folder, f"{name}_{number}.png")
    taken.add(target)
    return target


def _write_explanation(model, pixels, target: str) -> None:
    """`predict --explain`: the picture, its probabilities and its heatmap, written to `target` safely."""
    from .. import explain, plots

    explanation = explain.explain_predictions(model, pixels[None])
    figure = plots.display_picture_prediction(pixels, explanation.probabilities[0], explanation.heatmaps[0])
    with written_atomically(target, suffix=".png") as partial:
        figure.savefig(partial, format="png")


def _picture_errors() -> tuple:
    """What decoding one picture may raise: the course's errors and PIL's (a decompression bomb)."""
    from PIL import Image

    return (FlowersTLError, OSError, ValueError, MemoryError, Image.DecompressionBombError)


def _picture_for(path: str, height: int, width: int):
    """A picture file as float32 pixels [height, width, 3]: crop-filled to a square of the longer
    side, then center-cropped to the model's shape (the same as `load_picture` for square models)."""
    from ..pictures import load_picture

    side = max(height, width)
    pixels = load_picture(path, side, notes=_note)
    top, left = (side - height) // 2, (side - width) // 2
    return pixels[top:top + height, left:left + width]


def _convert(args) -> int:
    from . import convert

    if args.folder:
        report = convert.convert_folder(args.folder, args.output, image_size=args.image_size,
                                        shards=args.shards, seed=args.seed, overwrite=args.overwrite,
                                        progress=_progress_bar())
    else:
        report = convert.convert_tf_flowers(args.output, image_size=args.image_size,
                                            shards=args.shards, seed=args.seed, overwrite=args.overwrite)
    print(report)
    return 0


@_notes_on_stderr
def _download(args) -> int:
    from .download import download

    print("\n".join(download(args.output, args.data, args.weights)), file=args.results)
    return 0


def _info(args) -> int:
    import keras
    import tensorflow as tf

    from .cluster import choose_accelerator
    from ..data import data_pattern
    from ..model import resolve_weights

    print(say(VERSIONS, python=platform.python_version(), tensorflow=tf.__version__, keras=keras.__version__))
    try:
        import jax

        print(say(JAX_VERSION, version=jax.__version__))
    except ImportError:
        print(say(JAX_MISSING))
    print(say(DATA_PATTERN, pattern=data_pattern()))
    weights = os.environ.get("FLOWERS_TL_WEIGHTS") or "imagenet"
    print(say(WEIGHTS, weights=weights))
    choose_accelerator()
    resolve_weights()  # fails early, with a clear message, on a missing weights file
    return 0


def _load_model(path: str):
    """Load a saved model for `evaluate` and `predict`: uncompiled, since they only predict (so
    Keras does not rebuild the optimizer and warn that it skips its saved variables)."""
    import keras

    from .. import model  # noqa: F401  (registers the course's layers: FeatureSquareRoot, ClassProbabilities)
    from .modelfile import check_runs_no_outside_code

    _check_model_file(path)
    check_runs_no_outside_code(path)  # on every Keras: its own safe mode refuses TFSMLayer only from 3.13.2
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        first = first_line(error)
        raise ConfigError(say(NOT_A_FLOWERS_MODEL, path=path, reason=first)) from None


def _check_model_file(path: str) -> None:
    """ConfigError saying what `path` really is when it cannot be a `.keras` model file."""
    import zipfile

    from .modelfile import check_not_hdf5

    if os.path.isdir(path):
        inside = os.path.join(path, "model.keras")
        hint = (say(GIVE_INSIDE, inside=inside) if os.path.isfile(inside) else
                say(SAVED_MODEL_FOLDER) if os.path.isfile(os.path.join(path, "saved_model.pb")) else say(GIVE_THE_FILE))
        raise ConfigError(say(MODEL_IS_A_FOLDER, path=path, hint=hint))
    if not os.path.exists(path):
        raise ConfigError(say(NO_MODEL_FILE, path=path))
    if not os.path.isfile(path):
        raise ConfigError(say(MODEL_NOT_REGULAR, path=path))
    check_not_hdf5(path)
    if not zipfile.is_zipfile(path):
        size = os.path.getsize(path)
        raise ConfigError(say_n(*NOT_A_ZIP, size, path=path, size=size))


if __name__ == "__main__":
    sys.exit(main())
