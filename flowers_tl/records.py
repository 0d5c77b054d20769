"""The flowers record format: the ground floor that `data`, `convert` and the tests build on.

One `tf.train.Example` per photo. The keys, their types and their defaults are written once,
in `SCHEMA`; `feature_spec()` turns them into the parser's spec, `encode()` writes one record
and `decode()` reads one back. Importing this module costs nothing: TensorFlow is imported only
when a record is encoded or parsed, so the command line and the package import stay light.

Only `image` and `class` are required, so shards written by other tools still load; `label` is
checked against `class` when it names a course flower; the other keys are informative.
"""

from typing import Dict, Iterable, Optional, Sequence

from .messages import NC_

# The course's five classes, as the data labels them; `messages.class_name` shows them translated.
CLASSES = [NC_("flower class", "daisy"), NC_("flower class", "dandelion"), NC_("flower class", "roses"),
           NC_("flower class", "sunflowers"), NC_("flower class", "tulips")]

# The photos' side in pixels, written once for shards, models and the command line.
DEFAULT_IMAGE_SIZE = 192  # the course's shards (gs://flowers-public/tfrecords-jpeg-192x192-2)
MIN_IMAGE_SIZE = 32  # MobileNetV2's smallest input
MAX_IMAGE_SIZE = 1024  # 20 times the pixels of ImageNet's 224: past it memory, not accuracy, grows

# key: (value type, shape, default). Shape None: a list of any length; default None: required.
SCHEMA = {
    "image": ("bytes", (), None),  # JPEG bytes
    "class": ("int64", (), None),  # index into the class names
    "label": ("bytes", (), b""),  # the class name, UTF-8
    "size": ("int64", (2,), (0, 0)),  # height, width
    "one_hot_class": ("float", None, None),
    "filename": ("bytes", (), b""),  # where the photo came from (convert)
    "source_sha256": ("bytes", (), b""),  # of the original file's bytes (convert)
}
TRAINING_KEYS = ("image", "class", "label")  # what training reads


def feature_spec(keys: Iterable[str] = TRAINING_KEYS) -> dict:
    """The `tf.io.parse_single_example` spec of `keys` (all of `SCHEMA`'s keys are known)."""
    import tensorflow as tf

    dtypes = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}
    spec = {}
    for key in keys:
        kind, shape, default = SCHEMA[key]
        if shape is None:
            spec[key] = tf.io.VarLenFeature(dtypes[kind])
        elif default is None:
            spec[key] = tf.io.FixedLenFeature(list(shape), dtypes[kind])
        else:
            spec[key] = tf.io.FixedLenFeature(list(shape), dtypes[kind],
                                              default_value=list(default) if shape else default)
    return spec


def encode(image: bytes, class_index: int, classes: Sequence[str] = CLASSES,
           size: Sequence[int] = (0, 0), **extra: bytes) -> bytes:
    """One serialized record: `image` (JPEG bytes) of class `classes[class_index]`.

    `label` and `one_hot_class` follow from the class; `extra` sets other keys of `SCHEMA`
    (`filename`, `source_sha256`, or a `label` that differs on purpose).
    """
    fields = {
        "image": image,
        "class": class_index,
        "label": classes[class_index].encode("utf-8") if 0 <= class_index < len(classes) else b"",
        "size": list(size),
        "one_hot_class": [1.0 if index == class_index else 0.0 for index in range(len(classes))],
    }
    fields.update(extra)
    return encode_fields(fields)


def encode_fields(fields: Dict[str, object]) -> bytes:
    """Serialize any subset of `SCHEMA`'s keys (a key left out is absent from the record)."""
    import tensorflow as tf

    def feature(kind, value):
        values = value if isinstance(value, (list, tuple)) else [value]
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if kind == "int64":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    features = {key: feature(SCHEMA[key][0], value) for key, value in fields.items()}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def decode(serialized: bytes, keys: Optional[Iterable[str]] = None) -> dict:
    """One serialized record as a dict of numpy values (all `SCHEMA` keys unless `keys`)."""
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, feature_spec(keys or SCHEMA))
    if "one_hot_class" in parsed:
        parsed["one_hot_class"] = tf.sparse.to_dense(parsed["one_hot_class"])
    return {key: value.numpy() for key, value in parsed.items()}
