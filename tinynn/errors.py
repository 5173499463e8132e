"""The tinynn error taxonomy.

Every error is catchable both as a tinynn type and as the matching built-in type, so
``except ValueError`` in user code keeps working. Messages say what was checked, what was
expected, what was received, and a hint where one helps.
"""


class TinyNNError(Exception):
    """Base class of every error raised on purpose by tinynn."""


class ArgumentError(TinyNNError, ValueError):
    """An argument has an invalid value: a size of 0, a rate outside [0, 1), an unknown name.
    Keras raises ``ValueError`` for the same mistakes."""


class ShapeError(TinyNNError, ValueError):
    """An array has the wrong rank, layout or size."""


class DTypeError(TinyNNError, TypeError):
    """An array has a dtype tinynn cannot use (complex, object, string, bool)."""


class LabelError(TinyNNError, ValueError):
    """Targets are not valid labels for the loss (negative, too large, non-integral, NaN...)."""


class NonFiniteError(TinyNNError, ValueError):
    """Input data holds NaN or infinity."""


class NonFiniteLossError(TinyNNError, ArithmeticError):
    """Training produced a NaN or infinite loss or gradient; the update was not applied.

    Attributes: ``epoch`` and ``batch`` (0-based), ``history`` (the partial History).
    """

    def __init__(self, message: str, epoch: int = -1, batch: int = -1, history=None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history


class NotCompiledError(TinyNNError, RuntimeError):
    """A model was used before ``compile`` (or before it could be built)."""


class DatasetError(TinyNNError):
    """Base class of data-file problems."""


class DatasetCorruptError(DatasetError, ValueError):
    """A data file exists but its content is malformed (bad gzip, bad IDX header, ...)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No copy of the data set was found in any of the searched places."""


class ChecksumMismatchError(DatasetError, ValueError):
    """A file's SHA-256 or size differs from the pinned value."""


class DownloadError(DatasetError, OSError):
    """A download failed (connection, timeout, HTTP status)."""


class CheckpointError(TinyNNError, ValueError):
    """Base class of checkpoint problems."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint file is truncated, corrupt or not a tinynn checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not match the model it is loaded into."""


class UnsupportedKerasFeatureError(CheckpointError):
    """A Keras file uses a layer, argument or setting that tinynn does not have."""


class MissingDependencyError(TinyNNError, ImportError):
    """An optional dependency (e.g. h5py for Keras files) is not installed."""


class SweepError(TinyNNError, RuntimeError):
    """A configuration of a hyper-parameter sweep (``tinynn.tuning.run_sweep``) raised; that
    error is the ``__cause__``. Attributes: ``index`` (0-based) and ``config``."""

    def __init__(self, message: str, index: int = -1, config=None):
        super().__init__(message)
        self.index = index
        self.config = config


class DistributedError(TinyNNError, RuntimeError):
    """Data-parallel processes cannot go on together: a collective missed its deadline or
    failed, the ranks were called with different arguments or data, or their weights differ."""
