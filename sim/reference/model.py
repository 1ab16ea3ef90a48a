"""ReferenceModel: the core growth dynamics the plain Mesa way (an oracle and a speed baseline).

One :class:`~sim.reference.agents.Person` agent per person on a :class:`mesa.discrete_space.Network`
built from the same social graph the engine would build for the same configuration and seed, and a
day that runs the same stages in the same order as ``GrowthModel.step``:

1. exposure: on day 0 a share ``adoption.seed_fraction`` of the people; every day each non-user hears of the platform
   from outside with chance ``adoption.external_rate``; yesterday's mentions by friends arrive;
2. adoption: outside exposures convert with ``external_conversion``; a friend's mention with
   ``word_of_mouth_conversion`` x saturation^(mentions received before) x fade^(earlier mentions
   along the same edge), and under complex contagion times ``below_threshold`` (0: not at all) while
   fewer than ``threshold`` friends have ever joined;
3. visit (the segment's rate, the person's own propensity, a new user's novelty, satisfaction,
   habit and state), 4-5. purchase from a stock of latent demand, 6. share (one mention to a random friend),
7. retention (satisfaction reversion, dormancy, churn hazard with frailty, tenure, satisfaction and
friends on the platform), loyalty transitions.

What it leaves out: platform mechanisms (referral, paid acquisition, ...), which are the engine's
business; it refuses a configuration that enables one. It is the oracle of
``tests/test_reference.py`` (the engine and this model agree in distribution on adoption,
retention and orders) and the baseline of ``sim bench`` (people-days per second).

Randomness comes from Mesa's seeded generators (``model.rng`` for building, ``model.random`` for
per-agent decisions): the same seed gives the same run, but not the engine's draws, so the two
models agree in distribution, not run by run.
"""

from __future__ import annotations

from collections import Counter

import mesa
from mesa.agent import AgentSet
import numpy as np
from mesa.discrete_space import Network

from sim.behaviour import propensity_of, share_of
from sim.config import SimConfig
from sim.engine import Streams
from sim.graph import build_graph
from sim.population import category_popularity
from sim.reference.agents import ACTIVE, AWARE, DORMANT, POTENTIAL, Person
from sim.schema import ConfigError


class Catalogue:
    """Category price levels (mean 1) and popularity, as in the engine."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator):
        c = cfg.catalogue
        level = np.exp(rng.normal(0.0, c.price_spread, c.categories))
        self.price_level = (level / level.mean()).tolist()
        self.popularity = category_popularity(cfg)
        self._cum = np.cumsum(self.popularity).tolist()
        self._categories = list(range(c.categories))

    def draw(self, random) -> int:
        return random.choices(self._categories, cum_weights=self._cum)[0]


class ReferenceModel(mesa.Model):
    """The core dynamics with one Mesa agent per person. Build from a :class:`SimConfig`."""

    def __init__(self, cfg: SimConfig, graph=None):
        on = cfg.enabled()
        if on:
            raise ConfigError(f"the reference model has no platform mechanisms; disable {', '.join(on)}")
        if cfg.adoption.join_notice or cfg.adoption.seeding != "random":
            raise ConfigError("the reference model has no joining notices or seed neighbourhoods; use adoption.join_notice=0 "
                              "and adoption.seeding=random")
        super().__init__(seed=cfg.seed)
        self.cfg = cfg
        self.day = -1
        if graph is None:  # the graph the engine builds for this configuration and seed
            graph = build_graph(cfg.graph, cfg.population.size, Streams(cfg.seed).setup("graph"))
        if getattr(graph, "well_mixed", False):
            raise ConfigError("the reference model needs a stored graph (not graph=complete)")
        self.grid = Network(graph.to_networkx(), random=self.random)
        self.segments = list(cfg.population.segments.values())
        self.catalogue = Catalogue(cfg, self.rng)
        self._add_people(graph.n)
        self.users = AgentSet([], random=self.random)  # active, loyal or dormant
        self.non_users = graph.n  # potential or aware
        self.mentions: list[tuple[Person, Person]] = []  # today's, heard tomorrow
        self.edge_sends: Counter[tuple[int, int]] = Counter()
        self.cohort_size: Counter[int] = Counter()  # joined_day -> users
        self.retained: Counter[tuple[int, int]] = Counter()  # (joined_day, age) -> visitors
        self.daily: dict[str, list[float]] = {k: [] for k in ("new_users", "dau", "orders", "gmv", "users", "churned_users")}
        self.datacollector = mesa.DataCollector(model_reporters={"users": lambda m: len(m.users)})

    def _add_people(self, n: int) -> None:
        pop, rng = self.cfg.population, self.rng
        shares = np.array([s.share for s in self.segments])
        counts = np.floor(shares * n).astype(np.int64)
        counts[np.argsort(-(shares * n - counts), kind="stable")[: n - counts.sum()]] += 1
        segment = rng.permutation(np.repeat(np.arange(len(self.segments)), counts))
        cv = pop.frailty_cv
        frailty = rng.gamma(1.0 / cv**2, cv**2, size=n) if cv > 0 else np.ones(n)
        frailty = frailty * np.array([s.frailty for s in self.segments])[segment]
        favourite = rng.choice(self.cfg.catalogue.categories, size=n, p=self.catalogue.popularity)
        vcv = pop.visit_cv
        propensity = propensity_of(rng.gamma(1.0 / vcv**2, vcv**2, size=n)) if vcv > 1e-6 else np.zeros(n)
        cells = [self.grid._cells[i] for i in range(n)]
        self.people: list[Person] = list(Person.create_agents(
            self, n, cells, segment.tolist(), frailty.tolist(), favourite.tolist(), propensity.tolist()))

    # ================================================================== one day
    def step(self) -> None:
        self.day += 1
        self.visitors: list[Person] = []
        self.leaving: list[Person] = []
        self.today = Counter()
        self._adoption(self._exposures())
        self.users.shuffle_do("visit")
        visitors = self.new_users + self.visitors
        for person in visitors:
            person.shop()
        for person in visitors:
            person.share()
        self.users.do("age_a_day")
        for person in self.leaving:
            person.leave()
            self.users.discard(person)
        self.users.select(lambda p: p.state != DORMANT).do("update_loyalty")
        self._record(visitors)
        self.running = self.day + 1 < self.cfg.horizon

    def run(self) -> ReferenceModel:
        while self.day + 1 < self.cfg.horizon:
            self.step()
        return self

    # ------------------------------------------------------------------ exposure and adoption
    def _exposures(self) -> list[tuple[Person, float, Person | None]]:
        """(person, chance to join, friend who mentioned it or None) for today."""
        a = self.cfg.adoption
        events: list[tuple[Person, float, Person | None]] = []
        heard = [(friend, a.word_of_mouth_conversion, sender) for sender, friend in self.mentions]
        self.mentions = []
        if self.day == 0 and a.seed_fraction:
            for person in self.random.sample(self.people, share_of(a.seed_fraction, len(self.people))):
                events.append((person, 1.0, None))
        k = int(self.rng.binomial(self.non_users, a.external_rate)) if a.external_rate > 0 else 0
        picked: set[Person] = set()
        while len(picked) < k:  # k distinct non-users, by rejection
            person = self.random.choice(self.people)
            if person.state <= AWARE:
                picked.add(person)
        events += [(p, a.external_conversion, None) for p in sorted(picked, key=lambda p: p.unique_id)]
        return heard + events

    def _adoption(self, events) -> None:
        a, so = self.cfg.adoption, self.cfg.behaviour.social
        joining: dict[Person, None] = {}
        for person, p, sender in events:
            if person.state > AWARE:
                continue
            if person.state == POTENTIAL:
                person.state = AWARE
            if sender is not None:
                edge = (sender.unique_id, person.unique_id)
                repeats = self.edge_sends[edge]
                p *= so.saturation ** person.invites_received * so.repeat_fade ** repeats
                self.edge_sends[edge] = min(repeats + 1, 250)
                person.invites_received += 1
                if a.contagion == "complex" and person.adopted_friends < a.threshold:
                    p *= a.below_threshold
            if self.random.random() < p:
                joining[person] = None
        self.new_users = list(joining)
        for person in self.new_users:
            person.join()
            self.users.add(person)
        self.non_users -= len(self.new_users)

    # ------------------------------------------------------------------ bookkeeping
    def record_order(self, basket: float) -> None:
        self.today["orders"] += 1
        self.today["gmv"] += basket

    def _record(self, visitors: list[Person]) -> None:
        day = self.day
        self.cohort_size[day] = len(self.new_users)
        for person in visitors:
            self.retained[person.joined_day, day - person.joined_day] += 1
        row = {"new_users": len(self.new_users), "dau": len(visitors), "orders": self.today["orders"],
               "gmv": self.today["gmv"], "users": len(self.users), "churned_users": len(self.leaving)}
        for key, value in row.items():
            self.daily[key].append(value)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ results
    def retention_curve(self, max_age: int = 30) -> np.ndarray:
        """Pooled day-N retention (visitors at age N over members of cohorts old enough), as the
        engine's ``Recorder.retention_curve``."""
        days = self.day + 1
        out = np.full(min(max_age + 1, days), np.nan)
        for age in range(out.size):
            base = sum(self.cohort_size[d] for d in range(days - age))
            kept = sum(self.retained[d, age] for d in range(days - age))
            out[age] = kept / base if base else np.nan
        return out

    def summary(self) -> dict:
        ret = self.retention_curve(30)
        n = len(self.people)
        return {
            "adoption_share": sum(self.daily["new_users"]) / n,
            "users_end": self.daily["users"][-1],
            "orders": sum(self.daily["orders"]),
            "gmv": sum(self.daily["gmv"]),
            "dau_mean": float(np.mean(self.daily["dau"])),
            "retention_d1": float(ret[1]) if ret.size > 1 else float("nan"),
            "retention_d7": float(ret[7]) if ret.size > 7 else float("nan"),
            "retention_d30": float(ret[30]) if ret.size > 30 else float("nan"),
        }
