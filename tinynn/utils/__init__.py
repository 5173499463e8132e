"""Keras's ``keras.utils`` names that tinynn has: ``PyDataset`` (and its older name
``Sequence``), ``to_categorical``, ``normalize``, ``plot_model`` and ``model_to_dot``."""

from .arrays import normalize, to_categorical
from .model_visualization import model_to_dot, plot_model
from .py_dataset import PyDataset, Sequence

__all__ = ["PyDataset", "Sequence", "model_to_dot", "normalize", "plot_model", "to_categorical"]
