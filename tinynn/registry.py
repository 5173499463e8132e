"""Model classes by the names their files give them ("Sequential", "Functional"): filled by
``tinynn.models`` when it is imported, read by the loaders in ``tinynn.saving``, which thus
never import ``tinynn.models`` (the models import the savers, not the other way round)."""

MODEL_CLASSES: dict[str, type] = {}


def register_model(name: str):
    """Class decorator: ``MODEL_CLASSES[name] = cls``."""
    def add(cls: type) -> type:
        MODEL_CLASSES[name] = cls
        return cls
    return add
