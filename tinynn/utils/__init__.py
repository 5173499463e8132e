"""Keras's ``keras.utils`` names that tinynn has: ``plot_model`` and ``model_to_dot``."""

from .model_visualization import model_to_dot, plot_model

__all__ = ["model_to_dot", "plot_model"]
