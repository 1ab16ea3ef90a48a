"""Classic diffusion models on the social graph: independent cascade, linear threshold, network Bass.

So that researchers can reproduce textbook results on any graph (a generator or a loaded edge list),
the engine can run one of three classic models in its adoption stage (``diffusion.model``; presets
``scenario=ic | lt | bass_network`` switch everything else off). One step is one day; a person who
adopts joins the platform through the ``organic`` channel; "active" means ever joined
(``joined_day >= 0``), so churn never deactivates anyone in the diffusion's eyes.

- **Independent cascade** (Goldenberg, Libai and Muller 2001; Kempe, Kleinberg and Tardos 2003):
  a person activated on day t gets exactly one chance, on day t + 1, to activate each inactive
  friend, each succeeding with ``probability``. An inactive person with k friends activated
  yesterday is therefore activated today with probability 1 - (1 - p)^k, independently of everyone
  else, which is what is drawn (one draw per candidate, vectorised with ``neighbour_sum``).
- **Linear threshold** (Granovetter 1978; Kempe et al. 2003): each person draws a threshold
  uniformly in [0, 1] once per run; an inactive person with at least one friend activates on the day
  the share of their friends active by the end of the previous day reaches the threshold (every
  friend weighs 1 / degree). Synchronous: people activated today count from tomorrow on.
- **Bass on the network** (Bass 1969, with imitation through friends): a non-adopter adopts on a day
  with probability p + q x (share of their friends who have adopted), capped at 1. On the ``complete``
  graph this is the discrete-time Bass model.

Seeds: on day 0, ``round_down(seed_fraction x people)`` people (at least one when the fraction is
above 0) picked uniformly at random are activated, as NDlib's ``fraction_infected``; seed sets
are nested (a larger fraction keeps the same seeds and adds more).
Randomness comes from the named streams ``diffusion`` (daily draws) and ``diffusion.thresholds``.
"""

from __future__ import annotations

import numpy as np

from sim.config import DiffusionConfig
from sim.model_view import Model


class Diffusion:
    """The diffusion model of a run; ``activate(model)`` returns who adopts today."""

    def __init__(self, cfg: DiffusionConfig, model: Model):
        self.cfg = cfg
        graph = model.graph
        self.degree = graph.degree.astype(np.float64)
        self.threshold = None
        if cfg.model == "lt":
            self.threshold = model.streams.setup("diffusion.thresholds").random(graph.n)

    @staticmethod
    def build(cfg: DiffusionConfig, model: Model) -> Diffusion | None:
        return None if cfg.model == "none" else Diffusion(cfg, model)

    def seeds(self, model: Model, rng: np.random.Generator) -> np.ndarray:
        n = model.pop.n
        k = int(self.cfg.seed_fraction * n)
        if self.cfg.seed_fraction > 0:
            k = max(k, 1)
        # The first k of one random order: a larger seed_fraction adds seeds to the same ones.
        return np.sort(rng.permutation(n)[: min(k, n)])

    def activate(self, model: Model) -> np.ndarray:
        """People who adopt today (none of them a user yet), in increasing order."""
        rng = model.streams.today("diffusion")
        pop, day = model.pop, model.day
        if day == 0:
            return self.seeds(model, rng)
        inactive = pop.non_users_mask()
        joined = pop.joined_day
        if self.cfg.model == "ic":
            frontier = (joined == day - 1).astype(np.float64)
            tried = model.graph.neighbour_sum(frontier)  # friends activated yesterday
            cand = np.flatnonzero(inactive & (tried > 0))
            p = 1.0 - (1.0 - self.cfg.probability) ** tried[cand]
            return cand[rng.random(cand.size) < p]
        active = ((joined >= 0) & (joined < day)).astype(np.float64)
        share = np.divide(model.graph.neighbour_sum(active), self.degree, out=np.zeros(pop.n), where=self.degree > 0)
        if self.cfg.model == "lt":
            return np.flatnonzero(inactive & (self.degree > 0) & (share >= self.threshold))
        cand = np.flatnonzero(inactive)  # bass
        p = np.minimum(self.cfg.p + self.cfg.q * share[cand], 1.0)
        return cand[rng.random(cand.size) < p]


def adoption_only(cfg) -> bool:
    """Whether a run is a classic diffusion model's (``diffusion.model`` other than ``none``). Such a
    run is read for adoption alone: its people still visit and buy through the platform's behaviour
    model, but GMV and profit are no part of a textbook cascade, threshold or Bass model, so the
    run line and reports leave money (and the platform's other metrics) out."""
    return cfg.diffusion.model != "none"


#: the horizon metrics comparisons and sweeps of classic diffusion runs show: adopters (with churn off,
#: the users at the horizon are the same people)
ADOPTION_METRICS = ("users_total", "users_end")


def adoption_metrics(metrics) -> list[str]:
    """The adoption metrics among ``metrics`` (``users_total`` when none is)."""
    return [m for m in metrics if m in ADOPTION_METRICS] or ["users_total"]
