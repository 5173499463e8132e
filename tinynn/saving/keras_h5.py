"""Keras files opened safely: the ``.keras`` zip and the HDF5 weight layouts (h5py, imported
only when a Keras file is used).

Layouts read (``KerasFile``):

- Keras 3 (``.weights.h5``, ``model.weights.h5`` inside ``.keras``; tf.keras 2.13+ writes the
  same): ``layers/<key>/vars/<i>``, where ``<key>`` is the snake_case class name with ``_1``,
  ``_2``... counted per class in layer order (never the layer's own name, see ``layer_keys``),
  ``i`` 0 = kernel, 1 = bias; the optimizer's variables in ``optimizer/vars/<i>``.
- legacy ``.h5`` (``model.save("m.h5")``, Keras 2 and 3): ``model_weights/<layer name>`` with
  the attributes ``layer_names`` (the order) and ``weight_names`` (each array's path in the
  layer's group: Keras 2 ``dense_3/kernel:0``, Keras 3 ``sequential_1/dense_3/kernel``), and the
  configs as JSON attributes. Keras 2's ``save_weights("w.h5")`` has the same at the root.

Nothing in a file is executed or unpickled: configs are parsed with ``json``, arrays are read
only after their shape and dtype are checked, and HDF5 soft or external links, external or
virtual datasets, and zip members or datasets declaring far more bytes than they store
(decompression bombs) are refused, as Keras 3.15 refuses them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import CheckpointCorruptError, MissingDependencyError, TinyNNError
from ..layers.base import snake_case
from ..registry import MODEL_CLASSES
from .limits import LoadLimits
from .zipcheck import check_archive

CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME = "config.json", "metadata.json", "model.weights.h5"
_LOW_LEVEL_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, EOFError,
                     zipfile.BadZipFile, RecursionError, IndexError)


def import_h5py():
    """The h5py module, or MissingDependencyError saying how to install it."""
    try:
        import h5py
    except ImportError as error:
        raise MissingDependencyError(
            "reading or writing Keras files (.keras, .h5) needs h5py, which is not installed: "
            "pip install \"tinynn[h5]\"") from error
    return h5py


def layer_keys(class_names: list[str]) -> list[str]:
    """Keras 3's group names for layers of these classes, in order:
    ``["Dense", "Dropout", "Dense"]`` -> ``["dense", "dropout", "dense_1"]``."""
    used: dict[str, int] = {}
    keys = []
    for class_name in class_names:
        base = snake_case(class_name)
        used[base] = used.get(base, -1) + 1
        keys.append(base if used[base] == 0 else f"{base}_{used[base]}")
    return keys


class FileLayer(NamedTuple):
    """A layer's arrays in a file (h5py datasets, not yet read), ``name`` as the file has it."""

    name: str
    arrays: list


class KerasFile:
    """An open Keras file; use as a context manager.

    Attributes: ``path``; ``config`` (the model config dict, None for weights-only files) and
    ``compile_config`` (None if absent), both as JSON; ``layout`` ``"keras3"`` or ``"legacy"``.
    A missing or unreadable path raises the usual OSError; every problem with the content
    raises CheckpointCorruptError naming the file.
    """

    def __init__(self, path: Path, limits: LoadLimits | None = None):
        self.path = path
        self.limits = limits or LoadLimits()
        self._h5py = import_h5py()
        self._stack = contextlib.ExitStack()
        self.config = self.compile_config = None
        self._declared = self._stored = 0  # bytes, over the datasets checked so far
        self._checked: set[str] = set()
        with open(path, "rb"):  # a missing or unreadable path raises its own OSError here
            pass
        try:
            with self.reading("the file"):
                if path.name.endswith(".keras"):
                    self._open_archive()
                else:
                    self.h5 = self._stack.enter_context(self._h5py.File(path, "r"))
                self._find_layout()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> KerasFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    # -- errors ---------------------------------------------------------------------------------
    def corrupt(self, problem: str) -> CheckpointCorruptError:
        """The error to raise for a content problem (returned, so callers ``raise`` it)."""
        return CheckpointCorruptError(
            f"Keras file {str(self.path)!r} cannot be loaded: {problem} (the file is truncated, "
            "damaged or not a Keras model or weights file; use another copy or save it again)")

    @contextlib.contextmanager
    def reading(self, what: str):
        """Turn low-level read errors into CheckpointCorruptError naming ``what``."""
        try:
            yield
        except TinyNNError:
            raise
        except _LOW_LEVEL_ERRORS as error:
            raise self.corrupt(f"reading {what} failed ({type(error).__name__}: {error})") \
                from error

    # -- opening --------------------------------------------------------------------------------
    def _open_archive(self) -> None:
        raw = self._stack.enter_context(open(self.path, "rb"))  # noqa: SIM115
        archive = self._stack.enter_context(zipfile.ZipFile(raw))
        check_archive(archive, raw, os.fstat(raw.fileno()).st_size, lambda name: name in (
            CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME) or name.startswith("assets/"),
            self.corrupt)
        self.config = self._json(self._member(archive, CONFIG_NAME, "max_config_bytes"),
                                 CONFIG_NAME)
        self.compile_config = self._dict_or_none(self.config.get("compile_config"),
                                                 "compile_config")
        weights = io.BytesIO(self._member(archive, WEIGHTS_NAME))
        self.h5 = self._stack.enter_context(self._h5py.File(weights, "r"))

    def _member(self, archive: zipfile.ZipFile, name: str, limit: str | None = None) -> bytes:
        """The member ``name``, at most the ``limit`` named (a LoadLimits field) long."""
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise self.corrupt(f"the archive has no {name}") from None
        if limit is not None and info.file_size > getattr(self.limits, limit):
            raise self.corrupt(f"{name} declares {info.file_size} bytes, more than "
                               f"{limit}={getattr(self.limits, limit)}; "
                               + self.limits.hint(limit))
        if self.limits.too_expanded(info.file_size, info.compress_size):
            raise self.corrupt(f"{name} declares {info.file_size} bytes but stores "
                               f"{info.compress_size} (a decompression bomb; "
                               f"{self.limits.hint('max_expansion')})")
        return archive.read(info)

    def _json(self, text, what: str) -> dict:
        with self.reading(what):
            value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else str(text))
        if not isinstance(value, dict):
            raise self.corrupt(f"{what} is not a JSON object")
        return value

    def _dict_or_none(self, value, what: str) -> dict | None:
        if value is not None and not isinstance(value, dict):
            raise self.corrupt(f"{what} is {type(value).__name__}, expected a JSON object")
        return value

    def _find_layout(self) -> None:
        h5 = self.h5
        for key in ("layers", "_layer_checkpoint_dependencies"):  # the latter: tf.keras 2.13
            if key in h5:
                self.layout, self._root = "keras3", self.group(h5, key)
                return
        self.layout = "legacy"
        self._root = self.group(h5, "model_weights") if "model_weights" in h5 else h5
        if not {"layer_names", "layer_names0"} & set(self._root.attrs):
            raise self.corrupt("it holds neither Keras 3 weights (layers/...) nor legacy "
                               "Keras weights (a layer_names attribute)")
        if "model_config" in h5.attrs:
            self.config = self._json(h5.attrs["model_config"], "the model_config attribute")
        if "training_config" in h5.attrs:
            self.compile_config = self._json(h5.attrs["training_config"],
                                             "the training_config attribute")

    # -- safe access ----------------------------------------------------------------------------
    def _child(self, group, name: str):
        if name in ("", ".", "..") or "\0" in name:
            raise self.corrupt(f"{group.name} names a member {name!r}")
        link = group.get(name, getlink=True)  # the link itself, never followed
        if link is None:
            raise self.corrupt(f"{group.name}/{name} is missing")
        if not isinstance(link, self._h5py.HardLink):
            raise self.corrupt(f"{group.name}/{name} is a {type(link).__name__}; Keras files "
                               "hold no links, and tinynn follows none")
        return group[name]

    def group(self, parent, path: str):
        """The group at ``path`` (``a/b``) below ``parent``, following no links."""
        node = parent
        for name in path.split("/"):
            node = self._child(node, name)
            if not isinstance(node, self._h5py.Group):
                raise self.corrupt(f"{node.name} is not a group")
        return node

    def dataset(self, parent, path: str, kinds: str = "f"):
        """The dataset at ``path`` below ``parent``, of a dtype kind in ``kinds`` (floats by
        default), checked before any data is read."""
        *groups, name = path.split("/")
        node = self._child(self.group(parent, "/".join(groups)) if groups else parent, name)
        if not isinstance(node, self._h5py.Dataset):
            raise self.corrupt(f"{node.name} is not a dataset")
        if node.external or node.is_virtual:
            raise self.corrupt(f"{node.name} keeps its data outside the file")
        if node.dtype.kind not in kinds:
            raise self.corrupt(f"{node.name} holds {node.dtype}, expected "
                               + ("floats" if kinds == "f" else "numbers"))
        declared = math.prod(node.shape) * node.dtype.itemsize
        stored = node.id.get_storage_size()
        if self.limits.too_expanded(declared, stored):
            raise self.corrupt(f"{node.name} declares {declared} bytes but stores {stored} "
                               f"({self.limits.hint('max_expansion')})")
        if node.name not in self._checked:  # the sum too: many datasets each under the floor
            self._checked.add(node.name)
            self._declared, self._stored = self._declared + declared, self._stored + stored
            if self.limits.too_expanded(self._declared, self._stored):
                raise self.corrupt(
                    f"its datasets declare {self._declared} bytes in all (up to {node.name}) "
                    f"but store {self._stored}: refused before allocating them "
                    f"({self.limits.hint('max_expansion')})")
        return node

    def read(self, dataset, dtype) -> np.ndarray:
        """The array of ``dataset`` as ``dtype``; NaN or infinity is refused."""
        with self.reading(dataset.name):
            array = np.asarray(dataset[()]).astype(dtype, copy=False)
        if not np.isfinite(array).all():
            raise self.corrupt(f"{dataset.name} holds NaN or infinity")
        return array

    def strings(self, group, name: str, limit: int, limit_name: str | None = None) -> list[str]:
        """A list of at most ``limit`` distinct strings in an attribute (``limit_name``: the
        LoadLimits field it comes from), also in Keras's chunked form (``name0``...)."""
        attrs = group.attrs
        with self.reading(f"the {name} attribute of {group.name}"):
            if name in attrs:
                chunks = [attrs[name]]
            else:
                chunks = []
                while f"{name}{len(chunks)}" in attrs:
                    chunks.append(attrs[f"{name}{len(chunks)}"])
            values = [item for chunk in chunks for item in np.atleast_1d(chunk).tolist()]
            if not all(isinstance(v, (str, bytes)) for v in values):
                raise self.corrupt(f"the {name} attribute of {group.name} is not a list of "
                                   "strings")
            values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
            for value in values:  # h5py keeps undecodable bytes as lone surrogates
                value.encode("utf-8")
        if len(values) > limit or len(set(values)) != len(values):
            raise self.corrupt(f"the {name} attribute of {group.name} lists {len(values)} "
                               f"names ({len(set(values))} distinct), expected at most {limit} "
                               "distinct names"
                               + (f"; {self.limits.hint(limit_name)}" if limit_name else ""))
        return values

    # -- content --------------------------------------------------------------------------------
    def weighted_layers(self, paths: list[str]) -> list[FileLayer]:
        """The file's layers that hold arrays, in model order. For the Keras 3 layout, whose
        group names come from the classes (``layer_keys``; a nested model's layers are groups
        below ``<its key>/layers/``), ``paths`` gives the order; top-level groups it does not
        reach come last, so a mismatch lists them."""
        if self.layout == "legacy":
            found = []
            for name in self.strings(self._root, "layer_names", len(self._root)):
                group = self.group(self._root, name)
                found.append(FileLayer(name, [
                    self.dataset(group, w)
                    for w in self.strings(group, "weight_names",
                                          self.limits.max_weights_per_layer,
                                          "max_weights_per_layer")]))
        else:
            paths = [*paths, *sorted(set(self._root) - {p.split("/")[0] for p in paths})]
            found = [FileLayer(path, self._vars(self.group(self._root, path)))
                     for path in paths if self._has(path)]
        return [layer for layer in found if layer.arrays]

    def _has(self, path: str) -> bool:
        """Whether the groups of ``path`` (``a/b/c``) exist below the weights' root."""
        node = self._root
        for name in path.split("/"):
            if not isinstance(node, self._h5py.Group) or name not in node:
                return False
            node = self._child(node, name)
        return True

    def _vars(self, group, kinds: str = "f") -> list:
        """The datasets ``vars/0``, ``vars/1``... of a Keras 3 group, in order."""
        if "vars" not in group:
            return []
        variables = self.group(group, "vars")
        names = sorted(variables, key=lambda n: int(n) if n.isdigit() else -1)
        if names != [str(i) for i in range(len(names))]:
            raise self.corrupt(f"{variables.name} holds {names}, expected 0, 1, ...")
        return [self.dataset(variables, name, kinds) for name in names]

    def optimizer_arrays(self) -> list | None:
        """The optimizer's datasets in order, or None: ``optimizer/vars/<i>`` (Keras 3 layout),
        or those ``optimizer_weights`` names in its ``weight_names`` (legacy)."""
        key = "optimizer" if self.layout == "keras3" else "optimizer_weights"
        if key not in self.h5:
            return None
        group = self.group(self.h5, key)
        if self.layout == "keras3":
            return self._vars(group, "fiu") if "vars" in group else None
        return [self.dataset(group, name, "fiu")
                for name in self.strings(group, "weight_names",
                                         self.limits.max_optimizer_variables,
                                         "max_optimizer_variables")]

    def scalar(self, dataset) -> float:
        """A 0-d dataset's value (integer or float), range-checked."""
        if dataset.shape != ():
            raise self.corrupt(f"{dataset.name} has shape {dataset.shape}, expected a scalar")
        with self.reading(dataset.name):
            value = dataset[()]
        if not np.isfinite(value):
            raise self.corrupt(f"{dataset.name} is {value}")
        return value.item()


def keras_class(layer) -> str:
    """The Keras class name of a tinynn layer, or of a model used as a layer."""
    if isinstance(layer, MODEL_CLASSES["Sequential"]):
        return "Sequential"
    if isinstance(layer, MODEL_CLASSES["Functional"]):
        return "Functional"
    return layer.keras_name


def write_weights(file, model, optimizer_name: str | None = None,
                  optimizer_arrays: list[np.ndarray] | None = None) -> None:
    """Write ``model``'s weights (and optimizer variables, if given) to ``file`` (a binary file
    object or path) in Keras 3's layout, as Keras 3.15 writes it."""
    h5py = import_h5py()
    with h5py.File(file, "w") as h5:
        _write_layers(h5, "layers/", model)
        if optimizer_arrays is not None:
            _write_vars(h5.create_group("optimizer"), optimizer_name, optimizer_arrays)
        _write_vars(h5, model.name, [])


def _write_layers(h5, prefix: str, model) -> None:
    """Each layer's group ``<prefix><key>/vars``; a nested model's layers below
    ``<prefix><key>/layers/``, as Keras 3 nests them."""
    for key, layer in zip(layer_keys([keras_class(layer) for layer in model.layers]),
                          model.layers):
        group = h5.create_group(prefix + key)
        if isinstance(layer, MODEL_CLASSES["Functional"]):
            _write_layers(h5, f"{prefix}{key}/layers/", layer)
            _write_vars(group, layer.name, [])
        else:
            _write_vars(group, layer.name, layer.weights.values())


def _write_vars(group, name: str, arrays) -> None:
    variables = group.create_group("vars")
    variables.attrs["name"] = name
    for i, array in enumerate(arrays):
        variables[str(i)] = array
