"""What the engine hands the parts it drives: the model as mechanisms, the recorder and the classic
diffusion models see it.

``sim.engine.GrowthModel`` is the one implementation. The parts it drives sit below the engine in
the import graph, so they name the model by this protocol rather than by importing the engine: a
mechanism changes state only through what is listed here (the contract of
``sim/mechanisms/base.py``, checked by ``tests/test_mechanism_contract.py``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from sim.economics import Economics
from sim.population import Population
from sim.streams import Streams


class Model(Protocol):
    """The growth model during a run (``sim.engine.GrowthModel``)."""

    cfg: Any  # the validated configuration (sim.config.SimConfig)
    day: int  # today, from 0
    pop: Population  # people as columns
    graph: Any  # the social graph (sim.graph.csr.Graph, or a complete graph)
    streams: Streams  # the run's seeded random streams
    economics: Economics  # the accounts money is booked to
    today: Any  # today's scratch state: exposures, visitors, offers, orders, counters (sim.engine.Today)
    catalogue: Any  # categories, their popularity and price levels
    metrics: Any  # the recorder (sim.metrics.Recorder)
    mechanisms: list  # the enabled mechanisms, in hook order
    channel_frailty: np.ndarray  # churn-frailty multiplier by acquisition channel

    def market_size(self) -> int: ...

    def sample_non_users(self, k: int, rng: np.random.Generator) -> np.ndarray: ...

    def reactivate(self, idx: np.ndarray) -> None: ...

    def churn(self, idx: np.ndarray) -> None: ...

    def list_price(self, buyers: np.ndarray, category: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def choose_category(self, buyers: np.ndarray, rng: np.random.Generator, recommended: np.ndarray | None = None,
                        follow: np.ndarray | None = None) -> np.ndarray: ...

    def book_orders(self, buyers: np.ndarray, basket: np.ndarray, category: np.ndarray, source: np.ndarray | str,
                    rng: np.random.Generator) -> None: ...


__all__ = ["Model"]
