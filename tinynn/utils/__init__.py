"""Keras's ``keras.utils`` names that tinynn has: ``PyDataset`` (and its older name
``Sequence``), ``image_dataset_from_directory``, ``to_categorical``, ``normalize``,
``split_dataset`` (on arrays),
``set_random_seed`` (tinynn's own seed
source: unlike Keras's, it leaves Python's and NumPy's global generators alone),
``plot_model`` and ``model_to_dot``."""

from ..config import set_random_seed
from .arrays import normalize, split_dataset, to_categorical
from .image_dataset import image_dataset_from_directory
from .model_visualization import model_to_dot, plot_model
from .py_dataset import PyDataset, Sequence

__all__ = ["PyDataset", "Sequence", "image_dataset_from_directory", "model_to_dot", "normalize",
           "plot_model", "set_random_seed", "split_dataset", "to_categorical"]
