"""The rules of the tool's runs: a `train` run's output folder, and the shards a model has seen.

The command line's wing (no notebook cell imports it):

* `keep_usable_backup`: `backup/` is kept only when it holds a checkpoint that opens, so a run
  that failed or was killed before its first epoch ended never blocks the corrected command.
* `CSVLog`: the per-epoch log, rewritten whole through `files.write_text_atomically` at each
  epoch, so it is never written through a link and an interrupted write leaves it whole.
* `inputs` / `check_same_inputs`: what a resume must match: the real data pattern and shards, the real
  weights file (not the `null` of an unset option) and every setting that changes the result.
* `check_unseen`: `evaluate` never scores, silently, shards the model was trained on.
"""

import os
import shutil
import sys
from typing import List, Optional, Sequence

import keras

from ..errors import ConfigError, DataError
from .files import remove_stale_partials, write_text_atomically
from ..messages import N_, N_plural, say, say_n

INTERRUPTED_RESUMABLE = N_("stopped by {signal}; run the same command again to resume from '{backup}'.")
INTERRUPTED_FRESH = N_("stopped by {signal} before the first epoch ended; run the same command again to start afresh.")
CHANGED_INPUTS = N_("'{backup}' holds an interrupted run made with other {names}; run the same command again "
                    "to resume it, or delete that folder to start afresh")
LOG_IS_A_LINK = N_("'{path}' is a symbolic link; flowers-tl never writes through one: remove it, then run the "
                   "same command again.")
TRAINED_ON_SCORED = N_plural(
    "model '{path}' was trained on {count} of the {total} shard it was asked to score ({names}), so its accuracy "
    "there would be too high: score the shards it was validated on ({validated}), with the --data and "
    "--validation-shards it was trained with, or pass --all-shards to score every shard knowingly.",
    "model '{path}' was trained on {count} of the {total} shards it was asked to score ({names}), so its accuracy "
    "there would be too high: score the shards it was validated on ({validated}), with the --data and "
    "--validation-shards it was trained with, or pass --all-shards to score every shard knowingly.")
SCORES_TRAINED_ON = N_plural(
    "Warning: model '{path}' was trained on {count} of this {total} shard ({names}): the accuracy below is higher "
    "than on photos it never saw.",
    "Warning: model '{path}' was trained on {count} of these {total} shards ({names}): the accuracy below is higher "
    "than on photos it never saw.")
INPUT_NAMES = {"data": N_("data (FLOWERS_TL_DATA, --data)"), "weights": N_("weights (FLOWERS_TL_WEIGHTS, --weights)"),
               "keras_backend": "KERAS_BACKEND"}


class TrainingInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT stopped `train`; the message says how to go on."""


def interrupted(stop: KeyboardInterrupt, backup: str) -> TrainingInterrupted:
    """The TrainingInterrupted for `stop` (its signal's name), once the backup is kept or removed."""
    signal_name = str(stop) or "SIGINT"
    if os.path.isdir(backup) and keep_usable_backup(backup):
        return TrainingInterrupted(say(INTERRUPTED_RESUMABLE, signal=signal_name, backup=backup))
    return TrainingInterrupted(say(INTERRUPTED_FRESH, signal=signal_name))


def start_clean(output: str, backup: str) -> None:
    """Before a run writes into its (claimed) `output`: remove the temporary files a killed run left,
    a link planted at `backup` (Keras would write its checkpoints through it), and a `backup` that
    holds no usable checkpoint."""
    remove_stale_partials(output, "")
    if os.path.islink(backup):
        os.remove(backup)
    if os.path.isdir(backup):
        keep_usable_backup(backup)


def keep_usable_backup(backup: str) -> bool:
    """Keep `backup` only if every stage in it holds a checkpoint that opens; True when it is kept.

    A backup without one (the run failed, or was killed, before its first epoch ended) or with
    one cut short by a full disk would make the next run refuse to start or fail to resume
    (Keras falls back to its `.bkp` copy only when there is one), so it is removed and the next
    run starts afresh.
    """
    import h5py

    def opens(path):
        try:
            with h5py.File(path, "r"):
                return True
        except OSError:
            return False

    stages = [folder for folder, _, names in os.walk(backup) if "training_metadata.json" in names
              or any(name.startswith("latest.weights.h5") for name in names)]
    usable = bool(stages) and all(
        any(opens(os.path.join(folder, name)) for name in ("latest.weights.h5", "latest.weights.h5.bkp")
            if os.path.isfile(os.path.join(folder, name))) for folder in stages)
    if not usable:
        shutil.rmtree(backup, ignore_errors=True)
    return usable


class CSVLog(keras.callbacks.Callback):
    """Keras' CSVLogger (an `epoch` column, then the metrics in name order), written safely.

    Each epoch the whole log is written anew (`files.write_text_atomically`): a link planted at
    its path is replaced, never followed, and an interrupted write leaves the last whole log. A
    resumed run continues the log it finds (a link found there is refused by name).
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        lines = _log_lines(self.path) or [",".join(["epoch", *sorted(logs)])]
        columns = lines[0].split(",")[1:]
        lines.append(",".join([str(epoch), *(str(float(logs[name])) if name in logs else "" for name in columns)]))
        write_text_atomically(self.path, "\n".join(lines))


def _log_lines(path: str) -> List[str]:
    """The lines of the log at `path` (none when there is no log); DataError naming a link found there."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return []
    except OSError:
        raise DataError(say(LOG_IS_A_LINK, path=path)) from None
    with os.fdopen(descriptor, encoding="utf-8") as handle:
        return [line for line in handle.read().splitlines() if line]


def inputs(args, names: Sequence[str], shards: Sequence[str]) -> dict:
    """Every input of `train` that changes its result, by its real value: `args`' `names`, the data
    pattern and weights actually used (from the options or FLOWERS_TL_DATA / FLOWERS_TL_WEIGHTS),
    the shards (name and size), the weights file's size and the Keras backend."""
    from ..data import data_pattern, shard_ids
    from ..model import resolve_weights

    settings = {name: getattr(args, name) for name in names}
    weights = resolve_weights(args.weights)
    settings["data"] = data_pattern(args.data)
    settings["shards"] = shard_ids(shards)
    settings["weights"] = [weights, os.path.getsize(weights) if weights not in (None, "imagenet") else None]
    settings["keras_backend"] = keras.backend.backend()
    return settings


def check_same_inputs(saved: dict, settings: dict, backup: str) -> None:
    """ConfigError naming each input of `settings` that differs from the `saved` one of `backup`."""
    changed = sorted(say(INPUT_NAMES.get(name, name)) for name in settings if saved.get(name) != settings[name])
    if changed:
        raise ConfigError(say(CHANGED_INPUTS, backup=backup, names=", ".join(changed)))


def check_unseen(model_path: str, seen: Optional[tuple], scored: Sequence[str], all_shards: bool) -> None:
    """ConfigError (or, with --all-shards, a warning on stderr) when shards to score were trained on.

    `seen`: (training shard ids, validation shard ids) the model carries (`model.shards_of`),
    None for a model saved without them.
    """
    from ..data import shard_ids

    if not seen:
        return
    trained, validated = seen
    overlap = [shard for shard in shard_ids(scored) if shard in trained]
    if not overlap:
        return
    fields = dict(path=model_path, count=len(overlap), total=len(scored), names=_few(overlap))
    if all_shards:
        print(say_n(*SCORES_TRAINED_ON, len(scored), **fields), file=sys.stderr)
        return
    raise ConfigError(say_n(*TRAINED_ON_SCORED, len(scored), validated=_few(validated), **fields))


def _few(names: Sequence[str]) -> str:
    """Up to 4 names, comma-separated, for a message."""
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
