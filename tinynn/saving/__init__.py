"""Saving and loading without pickle.

``save_model``/``load_model`` write and read a whole model (``.npz``): architecture and compile
settings as JSON, weights, the random generators' state and, optionally, the optimizer state,
so that training resumes bitwise. ``save_weights``/``load_weights`` handle weights alone
(``.weights.npz``). ``Sequential.save``, ``save_weights``, ``load_weights`` and
``tinynn.models.load_model`` delegate here. Paths ending in ``.keras`` or ``.h5`` use Keras's
formats instead (keras_format.py: import from Keras 2 and 3, export for Keras 3).

Format (``FORMAT_VERSION`` 1): an uncompressed ``.npz`` with ``format_version``, ``manifest``
(UTF-8 JSON as uint8: ``format``, ``kind`` "model"/"weights", ``tinynn_version``,
``model_name``, ``weights`` {name: {shape, dtype}}, and for models ``model``, ``compile``,
``optimizer`` {iterations, slots}, ``rng``), ``param/<layer>/<key>`` and
``optimizer/<slot>/<layer>/<key>``. Guarantees: atomic writes (atomic.py), checks before any
allocation and no pickle (archive.py), class names resolved through fixed tables
(serialization.py), all-or-nothing loads (api.py), bounds on what a file may ask for
(limits.py, docs/security.md).
"""

from .api import load_model, load_weights, save_model, save_weights
from .archive import FORMAT_VERSION
from .limits import LoadLimits

__all__ = ["FORMAT_VERSION", "LoadLimits", "load_model", "load_weights", "save_model",
           "save_weights"]
