"""Where the course's shards come from: the pattern given, else the course bucket, else tf_flowers.

`data.list_shards` only lists files. This module is the one place that decides to fetch a data
set: when the pattern is the course's default (no argument, no `FLOWERS_TL_DATA`) and the course
bucket cannot be used (offline, or it lists nothing), tensorflow-datasets' `tf_flowers` is
converted once into the same format and cached (`tool.convert.tf_flowers_shards`: the command
line's wing, loaded only then). The command line, the notebooks and `flowers_tl.split_shards` call
it; it sits above `data`.
"""

import sys
from typing import List, Optional

from . import data, online
from .errors import DataError, OfflineWithoutData
from .messages import N_, say

BUCKET_UNUSABLE = N_("Note: the course bucket {bucket} cannot be used ({reason}); using "
                     "tensorflow-datasets' tf_flowers instead, converted once to the same format.")

WEIGHTS_TOO = N_("Training also needs MobileNetV2's weights: set FLOWERS_TL_WEIGHTS to a local no-top .h5 file, "
                 "or copy it into ~/.keras/models/ (`flowers-tl download` fetches the shards and the weights once).")


def find_shards(pattern: Optional[str] = None) -> List[str]:
    """The shards of `pattern` (`data.data_pattern`); for the course's default, tf_flowers if need be."""
    pattern = data.data_pattern(pattern)
    if pattern != data.DEFAULT_DATA_PATTERN:
        return data.list_shards(pattern)
    if online.is_online():
        try:
            return data.list_shards(pattern)
        except DataError as error:
            reason = str(error).split(". ")[0][:200]
    else:
        reason = "offline: no answer from storage.googleapis.com"
    print(say(BUCKET_UNUSABLE, bucket=pattern, reason=reason), file=sys.stderr)
    from .tool import convert  # the command line's converter, loaded only for this fallback

    return convert.tf_flowers_shards()


def split_shards(pattern: Optional[str] = None,
                 validation_shards: int = data.DEFAULT_VALIDATION_SHARDS) -> data.DataSplit:
    """`data.split_shards` of the shards `find_shards` chooses (the course's default split).

    The split is for training, which needs MobileNetV2's weights too: offline and without data, the
    message says where both come from (`evaluate`, which loads a saved model, is told only the data).
    """
    try:
        shards = find_shards(pattern)
    except OfflineWithoutData as error:
        raise OfflineWithoutData(f"{error} {say(WEIGHTS_TOO)}") from None
    return data.split_shards(pattern, validation_shards, shards=shards)
