"""`flowers-tl download`: the course's shards and MobileNetV2's weights copied once into a folder, for offline work.

Run once on a machine that is online: the shards of the course bucket (or of `--data`) and the
ImageNet MobileNetV2 no-top weights file (from the address Keras downloads it from, or from a
local `--weights` file) are written into `--output`, each file whole or not at all
(`files.written_atomically`; an interrupted run leaves no half file, and a second run copies only
what is missing). It ends by printing the two `export` lines that point the course at the copy.
Offline, it stops at once and names what it could not reach.
"""

import os
import shutil
import sys
import urllib.request
from typing import List, Optional

from ..errors import DataError
from ..messages import N_, N_plural, say, say_n
from .. import online
from .files import OutputClaim, make_output_folder, written_atomically

WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + WEIGHTS_FILE
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 60

OFFLINE = N_("offline: {what} cannot be fetched (no answer from storage.googleapis.com). Run `flowers-tl download` "
             "on a machine that is online, then copy its --output folder here.")
COURSE_SHARDS = N_("the course's shards ({pattern})")
THE_WEIGHTS = N_("MobileNetV2's weights ({url})")
SHARD_NOT_FETCHED = N_("could not fetch '{source}': {reason}. Check the network, or give a local copy with --data.")
WEIGHTS_NOT_FETCHED = N_("could not fetch '{source}': {reason}. Check the network, or give a local copy with "
                         "--weights.")
COPIED = N_plural("Copied {count} shard into '{folder}' ({kept} already there).",
                  "Copied {count} shards into '{folder}' ({kept} already there).")
WEIGHTS_COPIED = N_("Weights: '{path}'.")
EXPORTS = N_("To use the copy, set:")


def download(output: str, pattern: Optional[str] = None, weights: Optional[str] = None) -> List[str]:
    """Copy the shards of `pattern` (default: the course bucket) and the weights into `output`; the
    `export` lines that point FLOWERS_TL_DATA and FLOWERS_TL_WEIGHTS at the copy."""
    from .. import data

    pattern = pattern or data.DEFAULT_DATA_PATTERN
    remote = [what for what, needed in ((say(COURSE_SHARDS, pattern=pattern), "://" in pattern),
                                        (say(THE_WEIGHTS, url=WEIGHTS_URL), not weights)) if needed]
    if remote and not online.is_online():
        raise DataError(say(OFFLINE, what="; ".join(remote)))
    make_output_folder(output)
    with OutputClaim(output):
        shards = data.list_shards(pattern)
        copied = sum(_copy_shard(shard, output) for shard in shards)
        print(say_n(*COPIED, copied, count=copied, folder=output, kept=len(shards) - copied), file=sys.stderr)
        weights_path = _copy_weights(weights, output)
        print(say(WEIGHTS_COPIED, path=weights_path), file=sys.stderr)
    print(say(EXPORTS), file=sys.stderr)
    folder = os.path.abspath(output)
    return [f'export FLOWERS_TL_DATA="{os.path.join(folder, "*.tfrec")}"',
            f'export FLOWERS_TL_WEIGHTS="{os.path.join(folder, os.path.basename(weights_path))}"']


def _copy_shard(shard: str, output: str) -> bool:
    """Copy one shard (local or gs://) into `output` unless a file of the same name and size is there."""
    import tensorflow as tf

    target = os.path.join(output, os.path.basename(shard))
    try:
        size = tf.io.gfile.stat(shard).length
        if os.path.isfile(target) and not os.path.islink(target) and os.path.getsize(target) == size:
            return False
        with tf.io.gfile.GFile(shard, "rb") as source:
            _copy(source, target)
    except tf.errors.OpError as error:
        raise DataError(say(SHARD_NOT_FETCHED, source=shard, reason=error.message.splitlines()[0][:200])) from None
    return True


def _copy_weights(weights: Optional[str], output: str) -> str:
    """The weights file in `output`: copied from the local `weights` file, else downloaded from WEIGHTS_URL."""
    target = os.path.join(output, os.path.basename(weights) if weights else WEIGHTS_FILE)
    if weights and os.path.abspath(weights) == os.path.abspath(target):
        return target
    try:
        source = open(weights, "rb") if weights else urllib.request.urlopen(WEIGHTS_URL, timeout=DOWNLOAD_TIMEOUT_S)
        with source:
            _copy(source, target)
    except OSError as error:
        reason = getattr(error, "reason", None) or error.strerror or error
        raise DataError(say(WEIGHTS_NOT_FETCHED, source=weights or WEIGHTS_URL, reason=reason)) from None
    return target


def _copy(source, target: str) -> None:
    """Copy the open file `source` into `target`, whole or not at all (`files.written_atomically`)."""
    with written_atomically(target) as partial, open(partial, "wb") as handle:
        shutil.copyfileobj(source, handle, CHUNK_BYTES)
