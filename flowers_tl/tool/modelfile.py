"""What a model file may hold before `evaluate` and `predict` load it: no code from outside.

A `.keras` file is a zip whose `config.json` names every layer and object by module and class.
Loading it builds each one, and some of them run code that the file only points at: a
`TFSMLayer` runs a SavedModel's functions (which may write files), a `Lambda` runs Python code,
and a class from another module imports that module. Keras refuses these in its safe mode only
from 3.13.2, and the course supports Keras 3.10, so the config is read here first, the same way on
every Keras: only Keras' own classes and the ones flowers_tl registers are allowed. Legacy HDF5
models (`.h5`) are named as such instead of being called truncated.
"""

import json
import zipfile
from typing import Iterator, Optional, Tuple

from ..errors import ConfigError
from ..messages import N_, N_plural, say, say_n

BYTES = N_plural("{size} byte", "{size} bytes")

CONFIG_NAME = "config.json"
MAX_CONFIG_BYTES = 64 * 2**20  # a course model's config is about 100 kB
CODE_LAYERS = ("TFSMLayer", "Lambda", "__lambda__")  # Keras' own classes that run code from outside the file
OWN_MODULE = "flowers_tl.model"  # where the course's registered layers live
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

RUNS_OUTSIDE_CODE = N_("model '{path}' holds a {kind} layer '{name}', which runs code from outside the model file "
                       "when it is loaded, so it was not loaded: flowers-tl loads only Keras' own layers and its own. "
                       "Load only models you trust, or train one with `flowers-tl train`.")
FOREIGN_MODULE = N_("model '{path}' names '{kind}' from the module '{module}', code outside Keras and flowers-tl that "
                    "loading would import and run, so it was not loaded. Load only models you trust, or train one "
                    "with `flowers-tl train`.")
NO_CONFIG = N_("'{path}' is not a Keras model saved by flowers-tl: its {config} cannot be read ({reason}); "
               "save the model again with model.save('model.keras').")
LEGACY_HDF5 = N_("'{path}' is a legacy HDF5 (.h5) Keras model; flowers-tl loads only .keras files. If you trust it, "
                 "convert it once in Python: keras.saving.load_model('{path}').save('model.keras'), then give "
                 "model.keras.")


def check_not_hdf5(path: str) -> None:
    """ConfigError saying what to do when `path` is a legacy HDF5 model (it would be called 'not a zip')."""
    with open(path, "rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            raise ConfigError(say(LEGACY_HDF5, path=path))


def check_runs_no_outside_code(path: str) -> None:
    """ConfigError naming the first object of the `.keras` file `path` whose loading would run outside code.

    Allowed: classes of Keras' own modules (`keras`, `keras.*`) except `CODE_LAYERS`, the classes
    flowers_tl registers (`OWN_MODULE`), and Keras' internal markers (`__keras_tensor__`...).
    """
    config = _read_config(path)
    for kind, module, registered, name in _objects(config):
        if kind in CODE_LAYERS:
            raise ConfigError(say(RUNS_OUTSIDE_CODE, path=path, kind=kind, name=name or kind))
        if not _allowed(kind, module, registered):
            raise ConfigError(say(FOREIGN_MODULE, path=path, kind=kind, module=module))


def _read_config(path: str) -> dict:
    """The parsed `config.json` of a `.keras` zip; ConfigError when it is missing, huge or not JSON."""
    try:
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo(CONFIG_NAME).file_size
            if size > MAX_CONFIG_BYTES:
                raise ValueError(say_n(*BYTES, size, size=size))
            return json.loads(archive.read(CONFIG_NAME))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        reason = "missing" if isinstance(error, KeyError) else str(error).splitlines()[0][:200]
        raise ConfigError(say(NO_CONFIG, path=path, config=CONFIG_NAME, reason=reason)) from None


def _objects(value) -> Iterator[Tuple[str, Optional[str], Optional[str], Optional[str]]]:
    """(class name, module, registered name, layer name) of every serialized object in a config, depth first."""
    if isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            inner = value.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            yield value["class_name"], value.get("module"), value.get("registered_name"), name
        for inner in value.values():
            yield from _objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _objects(inner)


def _allowed(kind: str, module: Optional[str], registered: Optional[str]) -> bool:
    """True for Keras' own classes, flowers_tl's registered layers and Keras' internal markers."""
    import keras

    from .. import model  # noqa: F401  (registers the course's layers)

    if module is None:
        return kind.startswith("__") and kind.endswith("__")
    if module == "keras" or module.startswith("keras."):
        return True
    return (module == OWN_MODULE and registered == f"flowers_tl>{kind}"
            and keras.saving.get_registered_object(registered) is not None)
