"""One ``mesa`` agent per person: the core behaviour written the plain Mesa way.

Each :class:`Person` sits on its own cell of a :class:`mesa.discrete_space.Network` and decides for
itself, with scalar arithmetic, what the vectorised engine decides for everyone at once with numpy
(``sim/engine.py`` and ``sim/behaviour.py``): whether to visit, how much latent demand it holds,
whether to buy, to mention the platform to a friend, and to leave. The formulas are the same ones,
written out again on purpose: the point of this model is to be an independent second
implementation, so that agreement in distribution is evidence that both are right. (Two small
shapes are shared rather than restated: a person's own visit propensity, ``propensity_of``, and
the novelty factor of a new user's visits, ``novelty_factor``.)

Scalar draws use ``self.random`` (the model's seeded ``random.Random``, the Mesa idiom for per-agent
decisions; a scalar draw from a numpy Generator costs about ten times more per call).
"""

from __future__ import annotations

import math

import mesa

from sim.behaviour import novelty_factor
from sim.vocabulary import State

POTENTIAL, AWARE, ACTIVE, LOYAL, DORMANT, CHURNED = State.POTENTIAL, State.AWARE, State.ACTIVE, State.LOYAL, State.DORMANT, State.CHURNED


class Person(mesa.discrete_space.FixedAgent):
    """A person in the addressable market; a user once they join."""

    def __init__(self, model, cell, segment: int, frailty: float, favourite: int, propensity: float):
        super().__init__(model)
        self.cell = cell
        self.segment = segment
        self.seg = model.segments[segment]
        self.frailty = frailty
        self.favourite = favourite
        self.propensity = propensity  # own visit log-odds, fixed for life
        self.state = POTENTIAL
        self.satisfaction = self.seg.satisfaction
        self.joined_day = -1
        self.last_visit = -1
        self.visits = 0
        self.orders = 0
        self.spend = 0.0
        self.need = 0.0
        self.need_day = 0
        self.friends = 0  # friends who are users
        self.invites_received = 0
        self.adopted_friends = 0  # friends who have ever joined

    # ------------------------------------------------------------------ helpers
    @property
    def is_user(self) -> bool:
        return ACTIVE <= self.state <= DORMANT

    def friends_on_cells(self):
        return self.cell.neighborhood.agents

    # ------------------------------------------------------------------ adoption
    def join(self) -> None:
        cfg, day = self.model.cfg.behaviour, self.model.day
        self.state = ACTIVE
        self.joined_day = day
        self.last_visit = day
        self.visits = 1
        self.need = cfg.purchase.initial_need
        self.need_day = day
        self.satisfaction = min(max(self.satisfaction - cfg.satisfaction.onboarding_friction, 0.0), 1.0)
        for friend in self.friends_on_cells():
            friend.friends += 1
            friend.adopted_friends += 1

    def leave(self) -> None:
        self.state = CHURNED
        for friend in self.friends_on_cells():
            friend.friends -= 1

    # ------------------------------------------------------------------ visit
    def visit_probability(self) -> float:
        v, seg = self.model.cfg.behaviour.visit, self.seg
        p = min(max(seg.visit_rate, 1e-9), 1 - 1e-9)
        x = math.log(p / (1 - p)) + self.propensity
        x += math.log(novelty_factor(self.model.day - self.joined_day, v.novelty_odds, v.novelty_days))
        x += v.satisfaction_weight * (self.satisfaction - seg.satisfaction)
        x += v.habit_weight * math.log1p(self.visits)
        if self.state == DORMANT:
            x += math.log(max(v.dormant_odds, 1e-9))
        elif self.state == LOYAL:
            x += math.log(v.loyal_odds)
        return 1.0 / (1.0 + math.exp(-x))

    def visit(self) -> None:
        """Decide whether to open the app today (today's joiners have visited by joining)."""
        if self.joined_day == self.model.day:
            return
        if self.random.random() < self.visit_probability():
            if self.state == DORMANT:
                self.state = ACTIVE
            self.last_visit = self.model.day
            self.visits += 1
            self.model.visitors.append(self)

    # ------------------------------------------------------------------ purchase
    def need_now(self) -> float:
        p = self.model.cfg.behaviour.purchase
        rate = self.seg.need_rate * (p.loyal_need_ratio if self.state == LOYAL else 1.0)
        return min(p.need_cap, self.need + rate * (self.model.day - self.need_day))

    def shop(self) -> None:
        """A visitor buys with a chance that saturates in its stock of latent demand."""
        model, b = self.model, self.model.cfg.behaviour
        need = self.need_now()
        buy = self.random.random() < -math.expm1(-b.purchase.conversion * need)
        self.need = max(need - 1.0, 0.0) if buy else need
        self.need_day = model.day
        if not buy:
            return
        cat = model.catalogue
        category = self.favourite if self.random.random() < model.cfg.catalogue.taste_strength else cat.draw(self.random)
        sigma = b.purchase.basket_sigma
        basket = self.seg.basket_rmb * cat.price_level[category] * model.cfg.platform.price_level \
            * math.exp(self.random.gauss(-0.5 * sigma**2, sigma))
        self.orders += 1
        self.spend += basket
        s = b.satisfaction
        hit = -s.service_failure_shock if self.random.random() < s.service_failure_rate else s.purchase_gain
        self.satisfaction = min(max(self.satisfaction + hit, 0.0), 1.0)
        model.record_order(basket)

    # ------------------------------------------------------------------ share
    def share(self) -> None:
        """A visitor mentions the platform to one random friend, heard tomorrow."""
        model, so = self.model, self.model.cfg.behaviour.social
        age = model.day - self.joined_day
        propensity = min(max(2.0 * self.satisfaction, 0.0), 2.0) * (1.0 + so.novelty_boost * math.exp(-age / so.novelty_days))
        if self.random.random() < min(self.seg.share_rate * propensity, 1.0) and len(self.cell.neighborhood):
            friend = self.cell.neighborhood.select_random_cell().agents[0]
            model.mentions.append((self, friend))

    # ------------------------------------------------------------------ retention
    def hazard(self) -> float:
        c, day = self.model.cfg.behaviour.churn, self.model.day
        h = c.base_hazard * self.frailty * (1.0 + (day - self.joined_day) / c.tenure_days) ** (-c.tenure_decay)
        h *= math.exp(-c.satisfaction_weight * (self.satisfaction - self.seg.satisfaction))
        h *= (1.0 + self.friends) ** (-c.friends_weight)
        if self.state == LOYAL:
            h *= c.loyal_ratio
        elif self.state == DORMANT:
            h *= c.dormant_ratio
        return h

    def age_a_day(self) -> None:
        """Satisfaction drifts back to the segment's baseline; long absence makes a user dormant,
        longer absence or the churn hazard makes them leave (decided now, applied by the model)."""
        model, b = self.model, self.model.cfg.behaviour
        self.satisfaction += (self.seg.satisfaction - self.satisfaction) * b.satisfaction.reversion
        idle = model.day - self.last_visit
        if idle >= b.churn.dormant_after_days and self.state != DORMANT:
            self.state = DORMANT
        if self.random.random() < -math.expm1(-self.hazard()) or idle >= b.churn.churn_after_days:
            model.leaving.append(self)

    def update_loyalty(self) -> None:
        lc = self.model.cfg.behaviour.lifecycle
        if self.state == ACTIVE and self.orders >= lc.loyal_min_orders and self.satisfaction >= lc.loyal_min_satisfaction:
            self.state = LOYAL
        elif self.state == LOYAL and self.satisfaction < lc.loyal_min_satisfaction - 0.1:
            self.state = ACTIVE
