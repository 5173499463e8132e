"""tinynn: a small NumPy deep-learning framework with Keras's API and numba-fused hot loops.

    import tinynn as tn
    model = tn.Sequential([tn.layers.Input((28, 28)), tn.layers.Flatten(),
                           tn.layers.Dense(100, activation="sigmoid"),
                           tn.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=tn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
"""

from . import (
    activations,
    callbacks,
    config,
    datasets,
    errors,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    saving,
)
from .config import set_random_seed
from .models import Sequential

__version__ = "0.1.0"

__all__ = [
    "Sequential", "activations", "callbacks", "config", "datasets", "errors", "initializers",
    "layers", "losses", "metrics", "models", "optimizers", "saving", "set_random_seed",
]
