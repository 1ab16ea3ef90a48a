"""Referral programme (邀请有礼): users invite friends for a reward.

What it models: on each visit a user sends invitations to friends who are not yet users; the number
sent rises with the inviter's reward along a saturating response, and stops being rewarded past a
per-inviter cap. An invitation converts with a base probability raised by the invitee's reward, less
for people who have already received many invitations (saturation) and for repeats from the same
sender (fading) — both in ``sim.behaviour``. Rewards are paid on acceptance, to the inviter, the
invitee or both (one- or two-sided), and booked as incentive costs. Referred users arrive through a
friend, so they start with at least one friend on the platform (lower churn hazard in the shared
model) and are selected for fit (``frailty_multiplier``): in the literature referred customers are
about 18 % more likely to stay (Schmitt, Skiera and Van den Bulte 2011).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.config import CHANNELS
from sim.mechanisms import register
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.schema import param

REFERRAL = CHANNELS.index("referral")


@dataclass(frozen=True)
class ReferralConfig(MechanismConfig):
    inviter_reward: float = param(10.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the inviter when an invitee joins")
    invitee_reward: float = param(5.0, lo=0, hi=10_000, unit="RMB per accepted invite", doc="reward to the invitee on joining (0: one-sided)")
    invites_per_visit: float = param(0.2, lo=0, hi=50, unit="invitations per visit", doc="invitations an average user sends per visit with no reward")
    reward_uplift: float = param(4.0, lo=0, hi=100, unit="multiplier", doc="at saturating reward, invitations per visit are (1 + reward_uplift) times the unrewarded rate")
    reward_half_rmb: float = param(15.0, lo=0, lo_open=True, unit="RMB", doc="reward at which the response to it is half its maximum")
    conversion: float = param(0.2, lo=0, hi=1, unit="probability", doc="chance a first invitation to a fresh person converts with no invitee reward")
    invitee_uplift: float = param(1.5, lo=0, hi=100, unit="multiplier", doc="at saturating invitee reward, conversion is (1 + invitee_uplift) times the base")
    per_inviter_cap: int = param(20, lo=0, hi=1_000_000, unit="rewarded invites per inviter", doc="lifetime rewarded acceptances per inviter; 0 means no cap")
    frailty_multiplier: float = param(0.85, lo=0, lo_open=True, unit="multiplier", doc="churn frailty of referred users relative to others (selection for fit)")


@register
class Referral(Mechanism):
    name = "referral"
    Config = ReferralConfig
    columns = ("referral_rewards_paid",)
    accounts = {"referral_rewards": "incentive"}
    channels = ("referral",)

    def setup(self, model) -> None:
        self.rewarded = model.pop.add_column("referral_rewarded", np.int32)
        model.channel_frailty[REFERRAL] *= self.config.frailty_multiplier

    def _cap_left(self, idx: np.ndarray) -> np.ndarray:
        cap = self.config.per_inviter_cap
        return np.ones(idx.size, dtype=bool) if cap == 0 else self.rewarded[idx] < cap

    def share(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        rng = self.rng(model)
        v = today.visitors
        reward = np.where(self._cap_left(v), c.inviter_reward, 0.0)
        motivation = 1.0 + c.reward_uplift * bh.incentive_response(reward, c.reward_half_rmb)
        mean = c.invites_per_visit * pop.param("invite_propensity", v) * motivation * bh.sharing_propensity(pop, v, model.day, model.cfg.behaviour.social)
        n = bh.stochastic_round(mean, rng.random(v.size))
        senders = np.repeat(v, n)
        target, edge = model.graph.sample_neighbours_where(senders, rng, pop.non_users_mask())
        ok = target >= 0  # an inviter who finds no friend left to invite sends nothing
        today.count("invites_sent", int(ok.sum()))
        p = c.conversion * (1.0 + c.invitee_uplift * bh.incentive_response(c.invitee_reward, c.reward_half_rmb))
        today.next_exposures.add(target[ok], REFERRAL, min(p, 1.0), senders[ok], edge[ok])

    def adoption(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        new = today.new_users[pop.channel[today.new_users] == REFERRAL]
        if new.size == 0:
            return
        today.count("invites_accepted", new.size)
        inviters = pop.referrer[new]
        cap = c.per_inviter_cap
        # Several friends of one inviter can accept on the same day: count them in turn against the cap.
        within = np.ones(new.size, dtype=bool) if cap == 0 else self.rewarded[inviters] + bh.rank_within(inviters) < cap
        paid_inviter = within & (c.inviter_reward > 0)
        np.add.at(self.rewarded, inviters[paid_inviter], 1)
        cost = c.inviter_reward * int(paid_inviter.sum()) + c.invitee_reward * new.size
        model.economics.book("referral_rewards", cost)
        today.count("referral_rewards_paid", cost)
