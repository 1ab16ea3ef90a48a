"""A plain agent-per-person Mesa model of the core dynamics: the statistical oracle of the
vectorised engine and the baseline of ``sim bench`` (see ``model.py``)."""

from sim.reference.model import ReferenceModel

__all__ = ["ReferenceModel"]
