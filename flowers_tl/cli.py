"""The `flowers-tl` command line: train, evaluate, predict, convert, info.

Conventions: results go to stdout, notes and progress to stderr. Exit status 0 on
success, 1 when the command ran and failed (a `FlowersTLError`, printed as one line on
stderr instead of a traceback), 2 for a usage error (argparse's), 130 when interrupted.
`--help` and `--version` need no TensorFlow: each command imports what it uses.
"""

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile

from . import __version__
from .errors import ConfigError, FlowersTLError, OutputExistsError

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


def main(argv=None) -> int:
    """Entry point of the console script and of `python -m flowers_tl`."""
    args = _parser().parse_args(argv)
    try:
        check_keras_backend()
        return args.run(args) or 0
    except FlowersTLError as error:
        print(f"flowers-tl {args.command}: error: {error}", file=sys.stderr)
        return RUNTIME_ERROR
    except KeyboardInterrupt as interruption:  # convert says how far it got
        said = str(interruption) if type(interruption) is not KeyboardInterrupt else ""
        print(f"flowers-tl {args.command}: interrupted{': ' + said if said else ''}", file=sys.stderr)
        return INTERRUPTED


def check_keras_backend() -> None:
    """ConfigError naming KERAS_BACKEND when it names a backend that does not exist or is not installed.

    Checked before Keras is imported, which would otherwise fail with a traceback.
    """
    backend = os.environ.get("KERAS_BACKEND")
    if not backend:
        return
    if backend not in KERAS_BACKENDS:
        raise ConfigError(f"KERAS_BACKEND='{backend}' is not a Keras backend: set it to one of "
                          f"{', '.join(sorted(KERAS_BACKENDS))} (the course uses tensorflow or jax), "
                          "or unset it.")
    if importlib.util.find_spec(KERAS_BACKENDS[backend]) is None:
        raise ConfigError(f"KERAS_BACKEND='{backend}' but the package '{KERAS_BACKENDS[backend]}' is not "
                          "installed: install it (JAX: pip install -e \".[jax]\"), or unset KERAS_BACKEND "
                          "to use tensorflow.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowers-tl",
        description="Transfer learning on the five-class flowers TFRecords with a frozen MobileNetV2.",
        epilog="Results go to stdout, notes and progress to stderr. Exit status: 0 done, 1 the command "
               "failed (one error line on stderr), 2 usage error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and save it with its metrics")
    _add_data_arguments(train)
    train.add_argument("--weights", help="'imagenet', a .h5 path or 'none' (default: $FLOWERS_TL_WEIGHTS or imagenet)")
    train.add_argument("--image-size", type=int, default=192, help="square input size in pixels (default 192)")
    train.add_argument("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    train.add_argument("--batch-size", type=int, default=64, help="per replica (default 64)")
    train.add_argument("--head", choices=["flatten", "gap"], default="flatten",
                       help="Flatten (the course, default) or GlobalAveragePooling")
    train.add_argument("--seed", type=int, default=None,
                       help="random seed, for a run that can be repeated (default: a different run each time)")
    train.add_argument("--output", default=DEFAULT_OUTPUT, help=f"output folder (default {DEFAULT_OUTPUT})")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --output")
    train.add_argument("--no-fast", dest="fast", action="store_false",
                       help="recompute the frozen backbone every epoch (the original course's way)")
    tuning = train.add_argument_group(
        "fine-tuning", "after the head, let MobileNetV2's top blocks learn too at a low rate; blocks below "
        "stay frozen and are computed once per photo, so this takes minutes on a CPU")
    tuning.add_argument("--fine-tune-from", type=int, metavar="BLOCK",
                        help="first MobileNetV2 block to fine-tune, 1..16 (13: the top 4 blocks; default: "
                             "no fine-tuning)")
    tuning.add_argument("--fine-tune-epochs", type=int, default=8,
                        help="epochs of fine-tuning after the head's epochs (default 8)")
    tuning.add_argument("--fine-tune-rate", type=float, default=1e-4,
                        help="Adam learning rate, lowered along a cosine (default 1e-4)")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="accuracy and confusion matrix of a saved model")
    evaluate.add_argument("model", help="a .keras file written by `train`")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--all-shards", action="store_true",
                          help="evaluate every matching shard, not only the validation shards")
    evaluate.add_argument("--flip-test", action="store_true",
                          help="average each photo's and its mirror image's prediction (test-time flips)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    evaluate.add_argument("--top-losses", type=int, metavar="N",
                          help="also list the N photos with the highest loss and draw them, with heatmaps, "
                               "in --output-dir")
    evaluate.add_argument("--output-dir", default=DEFAULT_TOP_LOSSES_DIR,
                          help=f"folder for top_losses.png (default {DEFAULT_TOP_LOSSES_DIR})")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="classify picture files with a saved model")
    predict.add_argument("model", help="a .keras file written by `train`")
    predict.add_argument("images", nargs="+", help="picture files (JPEG, PNG...)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument("--explain", metavar="OUT_DIR",
                         help="also write one PNG per picture to OUT_DIR: the picture, its class "
                              "probabilities and where the model looks (Grad-CAM heatmap)")
    predict.set_defaults(run=_predict)

    convert = commands.add_parser("convert", help="photos (one folder per class) or tf_flowers to TFRecords")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", help="a folder with one sub-folder of photos per class")
    source.add_argument("--tf-flowers", action="store_true", help="tensorflow-datasets' tf_flowers")
    convert.add_argument("--output", required=True, help="folder for the .tfrec shards")
    convert.add_argument("--image-size", type=int, default=192,
                         help="square size of the pictures in the shards, in pixels (default 192)")
    convert.add_argument("--shards", type=int, default=16, help="number of .tfrec files to write (default 16)")
    convert.add_argument("--seed", type=int, default=42,
                         help="seed of the shuffle that spreads the classes over the shards (default 42)")
    convert.add_argument("--overwrite", action="store_true", help="replace shards already in --output")
    convert.set_defaults(run=_convert)

    info = commands.add_parser("info", help="versions, Keras backend and accelerator")
    info.set_defaults(run=_info)
    return parser


def _add_data_arguments(parser) -> None:
    parser.add_argument("--data", help="shard glob, local or gs:// (default: $FLOWERS_TL_DATA or the course bucket)")
    parser.add_argument("--validation-shards", type=int, default=3,
                        help="the first N shards are the validation set (default 3)")


def _train(args) -> int:
    from . import accelerator as acc, data, model as flowers_model, plots, sources, training

    model_path = os.path.join(args.output, "model.keras")
    if os.path.exists(model_path) and not args.overwrite:
        raise OutputExistsError(f"'{model_path}' exists; pass --overwrite to replace it, "
                                "or choose another --output folder")
    accelerator = acc.detect_accelerator()
    split = sources.split_shards(args.data, args.validation_shards)
    print(f"Data: {data.data_pattern(args.data)}: {split}", file=sys.stderr)
    if args.seed is not None:
        import keras

        keras.utils.set_random_seed(args.seed)  # before building: the head's first weights use it
    with accelerator.scope():
        model = flowers_model.build_model(args.image_size, head=args.head, weights=args.weights)
        flowers_model.compile_model(model, accelerator=accelerator)
    result = training.train(model, split, epochs=args.epochs, batch_size=args.batch_size,
                            accelerator=accelerator, seed=args.seed, fast=args.fast,
                            callbacks=_resume_callbacks(args), verbose=2)
    result.history = _history_from_log(os.path.join(args.output, TRAINING_LOG))  # resumed runs too
    head_accuracy = result.final_val_accuracy
    if args.fine_tune_from is not None:
        print(f"Head: validation accuracy {head_accuracy:.4f}. Fine-tuning from block {args.fine_tune_from}:",
              file=sys.stderr)
        result = _fine_tune(model, split, accelerator, args, result)
    _save_model_atomically(model, model_path)
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
    _write_text(os.path.join(args.output, "metrics.json"), json.dumps(metrics, indent=2))
    _write_text(os.path.join(args.output, "history.json"),
                json.dumps({k: [float(v) for v in vs] for k, vs in result.history.items()}, indent=2))
    plots.display_training_curves(result.history).savefig(os.path.join(args.output, "curves.png"))
    shutil.rmtree(os.path.join(args.output, BACKUP_FOLDER), ignore_errors=True)  # done: nothing to resume
    print(f"Validation accuracy {result.final_val_accuracy:.4f} (best {result.best_val_accuracy:.4f}) "
          f"in {result.wall_time_s:.1f} s; model, metrics and curves in {args.output}/")
    return 0


def _fine_tune(model, split, accelerator, args, head_result):
    """Fine-tune the top blocks (resumable like the head); one result for both stages."""
    from . import training

    tuned = training.fine_tune(model, split, from_block=args.fine_tune_from, epochs=args.fine_tune_epochs,
                               learning_rate=args.fine_tune_rate, batch_size=args.batch_size,
                               accelerator=accelerator, seed=args.seed, fast=args.fast,
                               callbacks=_resume_callbacks(args, FINE_TUNE_LOG, "fine_tune"), verbose=2)
    tuned_history = _history_from_log(os.path.join(args.output, FINE_TUNE_LOG))
    tuned.history = {name: head_result.history[name] + tuned_history[name] for name in tuned_history}
    tuned.wall_time_s += head_result.wall_time_s
    tuned.feature_time_s += head_result.feature_time_s
    return tuned


def _resume_callbacks(args, log_name: str = TRAINING_LOG, stage: str = "") -> list:
    """Keras callbacks that make an interrupted `train` resumable: a backup per epoch and a CSV log.

    While `<output>/backup` exists, the same command continues from the last
    finished epoch (Keras `BackupAndRestore`); it is removed once the model is saved.
    The fine-tuning stage keeps its own log and backup (`stage`) next to the head's.
    """
    import keras

    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ConfigError(f"--output '{args.output}' is a file; give a folder for the model and metrics")
    backup = os.path.join(args.output, BACKUP_FOLDER)
    settings_path = os.path.join(backup, "settings.json")
    log_path = os.path.join(args.output, log_name)
    names = RESUME_SETTINGS + (FINE_TUNE_SETTINGS if args.fine_tune_from is not None else ())
    settings = {name: getattr(args, name) for name in names}
    if os.path.isfile(settings_path):
        with open(settings_path, encoding="utf-8") as handle:
            saved = json.load(handle)
        changed = sorted(name for name in settings if saved.get(name) != settings[name])
        if changed:
            raise ConfigError(
                f"'{backup}' holds an interrupted run made with other {', '.join(changed)}; run the "
                "same command again to resume it, or delete that folder to start afresh")
        if not stage:  # said once, for the head
            print(f"Resuming the interrupted run saved in {backup}/", file=sys.stderr)
    else:
        os.makedirs(backup, exist_ok=True)
        _write_text(settings_path, json.dumps(settings))
        for old_log in (TRAINING_LOG, FINE_TUNE_LOG):  # a fresh run starts fresh logs
            if os.path.exists(os.path.join(args.output, old_log)):
                os.remove(os.path.join(args.output, old_log))
    return [keras.callbacks.CSVLogger(log_path, append=True),
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
    from . import sources, training

    model = _load_model(args.model)
    if args.all_shards:
        shards = sources.find_shards(args.data)
    else:
        shards = sources.split_shards(args.data, args.validation_shards).validation_shards
    worst = _top_losses(model, shards, args) if args.top_losses is not None else None
    report = training.evaluate(model, shards, flip_test=args.flip_test)
    if worst is not None:
        report["top_losses"] = worst
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['images']} images, accuracy {report['accuracy']:.4f}")
    for name, value in report["per_class_accuracy"].items():
        print(f"  {name:<11} {'n/a' if value is None else f'{value:.4f}'}")
    width = max(len(c) for c in report["classes"])
    print("confusion matrix (rows: true class, columns: predicted)")
    print(" " * (width + 1) + " ".join(f"{c[:6]:>6}" for c in report["classes"]))
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        print(f"{name:<{width}} " + " ".join(f"{v:>6}" for v in row))
    if worst is not None:
        print(f"the {len(worst)} photos with the highest loss (drawn in {args.output_dir}/top_losses.png):")
        for row in worst:
            print(f"  #{row['index']:<5} true {row['true_class']:<11} predicted {row['predicted_class']:<11} "
                  f"({row['probability']:.1%}), loss {row['loss']:.2f}")
    return 0


def _top_losses(model, shards, args) -> list:
    """`evaluate --top-losses N`: draw the N worst photos in --output-dir; one dict per photo."""
    from . import explain, plots
    from .data import CLASSES

    if args.top_losses < 1:
        raise ConfigError(f"--top-losses {args.top_losses}: ask for at least 1 photo (9 fill a 3x3 grid)")
    _make_folder(args.output_dir, "--output-dir")
    worst = explain.top_losses(model, shards, args.top_losses, with_heatmaps=True)
    plots.display_top_losses(worst).savefig(os.path.join(args.output_dir, "top_losses.png"))
    return [{"index": item.index, "true_class": CLASSES[item.true_class],
             "predicted_class": CLASSES[item.predicted_class], "probability": item.probability,
             "true_probability": item.true_probability, "loss": item.loss} for item in worst]


def _predict(args) -> int:
    import numpy as np

    from .pictures import load_picture
    from .records import CLASSES

    model = _load_model(args.model)
    size = int(model.input_shape[1])
    if args.explain:
        from . import explain

        explain.split_at_feature_map(model)  # a model Grad-CAM cannot explain fails before any picture
        _make_folder(args.explain, "--explain")
    results, failures, written = [], 0, set()
    for path in args.images:
        try:
            pixels = load_picture(path, size)
        except FlowersTLError as error:
            print(f"flowers-tl predict: skipped: {error}", file=sys.stderr)
            failures += 1
            continue
        probabilities = np.asarray(model.predict_on_batch(pixels[None]))[0]
        best = int(probabilities.argmax())
        results.append({"image": path, "class": CLASSES[best], "probability": float(probabilities[best])})
        if args.explain:
            results[-1]["explained"] = _write_explanation(model, pixels, path, args.explain, written)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for row in results:
            explained = f" -> {row['explained']}" if "explained" in row else ""
            print(f"{row['image']}: {row['class']} ({row['probability']:.1%}){explained}")
    return RUNTIME_ERROR if failures else 0


def _make_folder(path: str, option: str) -> None:
    """Create the folder an option names; ConfigError when a file is in the way."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{option} '{path}' is a file; give a folder for the PNG pictures")
    os.makedirs(path, exist_ok=True)


def _write_explanation(model, pixels, path: str, folder: str, written: set) -> str:
    """`predict --explain`: the picture, its probabilities and its heatmap as <folder>/<name>.png.

    Two pictures of one name (from two folders) get <name>.png and <name>_2.png; `written`
    holds the names this run has used.
    """
    from . import explain, plots

    explanation = explain.explain_predictions(model, pixels[None])
    name = os.path.splitext(os.path.basename(path))[0]
    target, number = os.path.join(folder, f"{name}.png"), 1
    while target in written:
        number += 1
        target = os.path.join(folder, f"{name}_{number}.png")
    written.add(target)
    plots.display_picture_prediction(pixels, explanation.probabilities[0],
                                     explanation.heatmaps[0]).savefig(target)
    return target


def _convert(args) -> int:
    from . import convert

    if args.folder:
        report = convert.convert_folder(args.folder, args.output, image_size=args.image_size,
                                        shards=args.shards, seed=args.seed, overwrite=args.overwrite,
                                        progress=convert.progress_on_stderr())
    else:
        report = convert.convert_tf_flowers(args.output, image_size=args.image_size,
                                            shards=args.shards, seed=args.seed, overwrite=args.overwrite)
    print(report)
    return 0


def _info(args) -> int:
    import keras
    import tensorflow as tf

    from .accelerator import detect_accelerator
    from .data import data_pattern
    from .model import resolve_weights

    print(f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    try:
        import jax

        print(f"JAX {jax.__version__}")
    except ImportError:
        print("JAX not installed")
    print(f"Data pattern: {data_pattern()}")
    print(f"Weights: {os.environ.get('FLOWERS_TL_WEIGHTS') or 'imagenet'}")
    detect_accelerator()
    resolve_weights()  # fails early, with a clear message, on a missing weights file
    return 0


def _load_model(path: str):
    """Load a saved model for `evaluate` and `predict`: uncompiled, since they only predict (so
    Keras does not rebuild the optimizer and warn that it skips its saved variables)."""
    import keras

    from .errors import ConfigError

    if not os.path.isfile(path):
        raise ConfigError(f"model file '{path}' does not exist (train one with `flowers-tl train`)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"'{path}' is not a Keras model saved by flowers-tl: {first}") from None


def _save_model_atomically(model, path: str) -> None:
    """Save next to `path`, then rename: an interrupted save never leaves a broken model."""
    folder = os.path.dirname(path) or "."
    handle, partial = tempfile.mkstemp(prefix=".partial-", suffix=".keras", dir=folder)
    os.close(handle)
    try:
        model.save(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _write_text(path: str, text: str) -> None:
    """Write a text file atomically (write a temporary file, then rename)."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
