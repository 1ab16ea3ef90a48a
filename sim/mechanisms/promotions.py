"""Promotions (促销): a calendar of discount campaigns and what they do to demand.

What it models: a campaign is ``{kind, start, days, discount}`` (optionally repeated ``every`` days,
reaching a share ``reach`` of users, with its own ``budget_per_1000``). Kinds:

==========  =====================================================================================
kind        who is offered the discount, and what is special
==========  =====================================================================================
flash_sale  every user (限时秒杀): short, urgent, announced, a strong pull to visit
coupon      a ``reach`` share of users each day (优惠券), one use per user per run
threshold   every user (满减, spend X save Y): buyers top up their basket (``threshold_topup``)
festival    every user (双11 / 618): the announcement, the acquisition pull and the expansion are
            multiplied by ``festival_hype``; in the ``anticipation_days`` before it, deal-sensitive
            users hold back their purchases (a pre-festival lull)
new_user    users in their first ``new_user_days`` (新人券), one use per user per run; draws sign-ups
==========  =====================================================================================

Where the sales bump comes from (the classical decomposition of a promotion bump):
- acceleration: a discount raises purchase intensity through the shared deal factor, and the shared
  purchase consumes the ``need`` stock, so purchases are pulled forward and a dip follows the campaign
  by construction; deal buyers also stockpile (``stockpile``): they take home extra units in
  proportion to the discount and their deal sensitivity (a larger basket) and their demand stock
  falls by as much, below zero if need be, so their next purchase waits (purchase timing and
  quantity, Blattberg, Eppen and Lieberman 1981; Neslin, Henderson and Quelch 1985);
- switching: visitors from other platforms come to the sale (the announcement raises visit log-odds,
  ``visit_uplift``) and non-users are drawn in (``acquisition_rate``), weighted to deal seekers;
- expansion: a deal creates demand (``expansion``: extra need in proportion to discount and deal
  sensitivity: people buy more when it is cheap).
Deal seekers: every discounted purchase builds a *deal habit* (users drawn in by a campaign start with
one); while no campaign is on, the habit raises churn hazard in proportion to deal sensitivity
(``withdrawal_hazard``), and it fades over ``habit_memory_days``: deep discounts bring users who leave
when the deals stop (the low value of customers acquired with heavy discounts).

Money: the discount each order used is booked as an incentive cost (``promotion_discounts``) and
counted as ``discount_cost``; orders using a discount are credited to ``promotion``. A campaign stops
offering once its ``budget_per_1000`` (per run) or the mechanism's ``total_budget_per_1000`` is spent
(both in RMB per 1,000 people in the market, so a budget means the same at any market size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim import behaviour as bh
from sim.compiled import jit
from sim.kernels import fade, positions_in
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param, require
from sim.vocabulary import CHANNELS

ORGANIC = CHANNELS.index("organic")
Kind = Literal["flash_sale", "coupon", "threshold", "festival", "new_user"]
#: structural facts of each kind: announcement strength, who is eligible, single use, acquisition pull
KINDS = {
    "flash_sale": {"urgency": 1.0, "new_only": False, "single_use": False, "acquires": True},
    "coupon": {"urgency": 0.5, "new_only": False, "single_use": True, "acquires": False},
    "threshold": {"urgency": 0.5, "new_only": False, "single_use": False, "acquires": False},
    "festival": {"urgency": 1.0, "new_only": False, "single_use": False, "acquires": True},
    "new_user": {"urgency": 0.0, "new_only": True, "single_use": True, "acquires": True},
}


@dataclass(frozen=True)
class Campaign:
    """One campaign of the calendar."""

    kind: Kind = param("flash_sale", doc="flash_sale | coupon | threshold | festival | new_user")
    start: int = param(0, lo=0, unit="day", doc="first day of the campaign")
    days: int = param(1, lo=1, hi=36_500, unit="days", doc="length of each run")
    discount: float = param(0.2, lo=0, hi=0.9, unit="fraction of price", doc="discount offered (threshold: saving on a qualifying basket)")
    every: int = param(0, lo=0, hi=36_500, unit="days", doc="repeat the campaign every this many days (0: once)")
    reach: float = param(1.0, lo=0, hi=1, unit="fraction of users", doc="share of eligible users offered the discount each day")
    budget_per_1000: float = param(0.0, lo=0, hi=1e9, unit="RMB per 1,000 people in the market", doc="discount budget of each run; 0 means unlimited")

    def check(self, path: str) -> None:
        require(self.every == 0 or self.every >= self.days, f"{path}.every", self.every,
                f"allowed is 0 (once) or at least the campaign's days ({self.days})")


def _default_calendar() -> tuple[Campaign, ...]:
    # A typical Chinese e-commerce year with day 0 = 1 January: a weekly flash sale, the 618 festival
    # (15-18 June), Singles' Day (8-11 November) and an always-on new-user coupon.
    return (
        Campaign(kind="flash_sale", start=4, days=1, discount=0.3, every=7, reach=0.3),
        Campaign(kind="festival", start=165, days=4, discount=0.2),
        Campaign(kind="festival", start=311, days=4, discount=0.25),
        Campaign(kind="new_user", start=0, days=36_500, discount=0.2),
    )


@dataclass(frozen=True)
class PromotionsConfig(MechanismConfig):
    campaigns: tuple[Campaign, ...] = param(factory=_default_calendar, doc="the calendar: a list of {kind, start, days, discount[, every, reach, budget_per_1000]}")
    total_budget_per_1000: float = param(0.0, lo=0, hi=1e9, unit="RMB per 1,000 people in the market", doc="discount budget of all campaigns together; 0 means unlimited")
    visit_uplift: float = param(1.2, lo=0, hi=20, unit="log-odds", doc="visit log-odds added by a saturating announced discount (x kind urgency)")
    discount_half: float = param(0.15, lo=0, hi=1, lo_open=True, unit="fraction of price", doc="discount at which the visit and acquisition pull is half its maximum")
    festival_hype: float = param(2.0, lo=0, hi=20, unit="multiplier", doc="festival campaigns: multiplies the visit pull, acquisition and expansion")
    acquisition_rate: float = param(0.0005, lo=0, hi=1, unit="probability per day", doc="chance a non-user hears of a saturating acquiring campaign each day")
    acquisition_conversion: float = param(0.25, lo=0, hi=1, unit="probability", doc="chance hearing of a campaign leads to joining, x the person's deal sensitivity")
    expansion: float = param(0.3, lo=0, hi=10, unit="orders per unit discount", doc="latent demand a campaign adds to each visitor offered it, x discount x deal sensitivity (once per run)")
    stockpile: float = param(0.75, lo=0, hi=20, unit="extra orders of demand per unit discount", doc="stockpiling: a deal buyer takes home this many extra units x discount x deal sensitivity (basket up by as much) and their latent demand falls by as much, below zero if need be (a pantry), so later purchases wait (deals raise the quantity bought: Blattberg, Eppen and Lieberman 1981; Neslin, Henderson and Quelch 1985). Default: at 25 % off about a quarter of an order more (deal seekers 0.375), household stockpiling real but modest (Hendel and Nevo 2006), and acceleration about a third of an active user's bump (van Heerde, Leeflang and Wittink 2004)")
    threshold_topup: float = param(0.3, lo=0, hi=5, unit="fraction of basket", doc="threshold campaigns: how much buyers add to reach the threshold")
    new_user_days: int = param(7, lo=1, hi=36_500, unit="days", doc="new_user campaigns: days after joining during which the coupon applies")
    anticipation_days: int = param(3, lo=0, hi=60, unit="days", doc="days before a festival during which deal-sensitive users wait")
    anticipation_wait: float = param(0.3, lo=0, hi=10, unit="log purchase intensity per unit deal sensitivity", doc="how strongly they hold back before a festival")
    deal_habit_gain: float = param(0.3, lo=0, hi=1, unit="fraction", doc="share of the way to a full deal habit that one discounted purchase at a saturating discount goes")
    habit_memory_days: float = param(45.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="time scale over which a deal habit fades")
    withdrawal_hazard: float = param(0.5, lo=0, hi=50, unit="hazard ratio - 1", doc="extra churn hazard of a full deal habit x deal sensitivity while no campaign is on")
    platform_share: float = param(1.0, lo=0, hi=1, unit="fraction of the discount", doc="share of the discounts the platform funds (1: platform coupons, as 百亿补贴; shop coupons and 店铺满减 are the merchants' own, 0); the buyer sees the same price either way")


@register
class Promotions(Mechanism):
    name = "promotions"
    Config = PromotionsConfig
    columns = ("promotion_offers", "discount_cost", "promotion_new_users", "campaigns_running")
    accounts = {"promotion_discounts": "incentive"}
    funding = {"promotion_discounts": "platform_share"}

    def setup(self, model) -> None:
        pop = model.pop
        self.used = pop.add_column("promotion_coupon_used", np.int32, fill=-1)  # run key of the last single-use coupon used
        self.expanded = pop.add_column("promotion_expanded", np.int32, fill=-1)  # run key of the last expansion received
        self.habit = pop.add_column("deal_habit", np.float32)
        self.habit_decay = np.float32(np.exp(-1.0 / self.config.habit_memory_days))
        self.spent: dict[int, float] = {}
        self.total_spent = 0.0
        self.mean_basket = float(np.sum(pop.seg["basket_rmb"] * np.bincount(pop.segment, minlength=len(pop.seg["basket_rmb"])) / pop.n)) * model.cfg.platform.price_level
        self.runs: list[_Run] = []
        self.keys = np.zeros(0, dtype=np.int64)  # the key of each of today's runs
        self.targets = np.zeros(0, dtype=np.int64)  # non-users who heard of a campaign today
        self.mark = np.zeros(pop.n, dtype=np.bool_)  # scratch of _drawn, all False
        self.share = None  # per visitor: the share of the full price today's offer pays
        self.units = None  # per visitor: the extra units a purchase with today's offer stockpiles

    # ------------------------------------------------------------------ the calendar
    def _active(self, day: int, market: int) -> list[_Run]:
        out = []
        for k, c in enumerate(self.config.campaigns):
            if day < c.start:
                continue
            r = (day - c.start) // c.every if c.every else 0
            offset = day - c.start - r * c.every
            if offset >= c.days:
                continue
            key = k * 100_000 + r
            if c.budget_per_1000 and self.spent.get(key, 0.0) >= bh.per_1000(c.budget_per_1000, market):
                continue
            out.append(_Run(key, c))
        total = self.config.total_budget_per_1000
        if total and self.total_spent >= bh.per_1000(total, market):
            return []
        return out

    def _hype(self, c: Campaign) -> float:
        return self.config.festival_hype if c.kind == "festival" else 1.0

    def _pull(self, c: Campaign) -> float:
        return float(bh.incentive_response(c.discount, self.config.discount_half)) * self._hype(c)

    def farmable(self, model) -> dict[str, float]:
        """What a fake account could farm today (RMB): a sign-up coupon, and the subsidy per order."""
        signup = order = 0.0
        for run in self.runs:
            value = run.campaign.discount * self.mean_basket
            if KINDS[run.campaign.kind]["new_only"]:
                signup = max(signup, value)
            else:
                order = max(order, value)
        return {"signup": signup, "order": order}

    # ------------------------------------------------------------------ stage hooks
    def exposure(self, model) -> None:
        self.runs = self._active(model.day, model.market_size())
        self.keys = np.array([r.key for r in self.runs], dtype=np.int64)
        model.today.count("campaigns_running", len(self.runs))
        pull = max((self._pull(r.campaign) for r in self.runs if KINDS[r.campaign.kind]["acquires"]), default=0.0)
        self.targets = np.zeros(0, dtype=np.int64)
        if pull <= 0 or self.config.acquisition_rate <= 0:
            return
        rng = self.rng(model)
        nonusers = model.pop.count_non_users()
        k = rng.binomial(nonusers, min(1.0, self.config.acquisition_rate * pull))
        self.targets = model.sample_non_users(k, rng)
        prob = np.minimum(1.0, self.config.acquisition_conversion * model.pop.param("deal_sensitivity", self.targets))
        model.today.exposures.add(self.targets, ORGANIC, prob)

    def adoption(self, model) -> None:
        today = model.today
        if self.targets.size == 0 or today.new_users.size == 0:
            return
        drawn = _drawn(today.new_users, self.targets, model.pop.channel, ORGANIC, self.mark)
        self.habit[drawn] = 1.0  # they came for the deal
        today.count("promotion_new_users", drawn.size)

    def visit(self, model) -> None:
        announced = [r for r in self.runs if KINDS[r.campaign.kind]["urgency"] > 0]
        if not announced:
            return
        users = model.pop.user_index  # (read at once: no copy needed)
        boost = self.config.visit_uplift * max(KINDS[r.campaign.kind]["urgency"] * self._pull(r.campaign) * r.campaign.reach for r in announced)
        model.today.visit_boost[users] += np.float32(boost)

    def browse(self, model) -> None:
        c, pop, today, day = self.config, model.pop, model.today, model.day
        v = today.visitors
        self.share = None
        self._anticipate(model)
        if not self.runs or v.size == 0:
            return
        rng = self.rng(model)
        runs = [r.campaign for r in self.runs]
        # One uniform per run and visitor, run after run: the draws of one rng.random(v.size) per run.
        u = rng.random((len(runs), v.size))
        terms = (np.array([cp.reach for cp in runs]), np.array([KINDS[cp.kind]["new_only"] for cp in runs]),
                 np.array([KINDS[cp.kind]["single_use"] for cp in runs]), np.array([cp.discount for cp in runs]), self.keys)
        best, run_of, pos = _offers(v, u, terms, day, (pop.joined_day, self.used), c.new_user_days)
        if pos.size == 0:
            return
        self.share = np.zeros(v.size)
        self.share[pos] = today.offer_discount(pos, best[pos])
        self.best, self.run_of = best, run_of
        today.attribute(pos, "promotion")
        for j, cp in enumerate(runs):
            if cp.kind == "threshold":
                today.enlarge_basket(pos[run_of[pos] == j], 1.0 + c.threshold_topup)
        self.units = None
        if c.stockpile > 0:
            self.units = np.zeros(v.size)
            self.units[pos] = bh.stockpile_units(c.stockpile, pop.param("deal_sensitivity", v[pos]), best[pos])
            today.enlarge_basket(pos, 1.0 + self.units[pos])
        # Expansion once per person and run (a visitor has one run: one call for all runs).
        coef = np.array([c.expansion * cp.discount * self._hype(cp) for cp in runs])
        people, extra = _expansion(v, pos, run_of, self.keys, coef, self.expanded, pop.seg["deal_sensitivity"], pop.segment)
        bh.add_need(pop, people, day, extra, model.cfg.behaviour.purchase)
        today.count("promotion_offers", pos.size)

    def _anticipate(self, model) -> None:
        """Deal-sensitive visitors hold back in the days before a festival."""
        c, day = self.config, model.day
        if c.anticipation_days == 0 or c.anticipation_wait == 0 or any(r.campaign.kind == "festival" for r in self.runs):
            return
        soon = any(cp.kind == "festival" and self._starts_within(cp, day, c.anticipation_days) for cp in c.campaigns)
        if soon and model.today.visitors.size:
            v = model.today.visitors
            model.today.boost_relevance(np.arange(v.size), np.exp(-c.anticipation_wait * model.pop.param("deal_sensitivity", v)))

    @staticmethod
    def _starts_within(cp: Campaign, day: int, horizon: int) -> bool:
        ahead = cp.start - day
        if cp.every and day >= cp.start:
            ahead = (-(day - cp.start)) % cp.every
        return 0 < ahead <= horizon

    def purchase(self, model) -> None:
        today = model.today
        if self.share is None:
            return
        used, per_order = today.subsidy(self.share)
        if used.size == 0:
            return
        buyers = today.visitors[used]
        runs = self.run_of[used]
        if self.units is not None:
            bh.stock_up(model.pop, buyers, model.day, self.units[used], model.cfg.behaviour.purchase)
        for j, run in enumerate(self.runs):
            self.spent[run.key] = self.spent.get(run.key, 0.0) + float(per_order[runs == j].sum())
            if KINDS[run.campaign.kind]["single_use"]:
                self.used[buyers[runs == j]] = run.key
        cost = float(per_order.sum())
        self.total_spent += cost
        model.economics.book("promotion_discounts", cost)
        today.count("discount_cost", cost)
        gain = self.config.deal_habit_gain * bh.incentive_response(self.best[used], self.config.discount_half)
        h = self.habit[buyers]
        self.habit[buyers] = h + (1.0 - h) * gain.astype(np.float32)

    def retention(self, model) -> None:
        c, pop = self.config, model.pop
        fade(self.habit, self.habit_decay)
        if c.withdrawal_hazard == 0 or any(not KINDS[r.campaign.kind]["new_only"] for r in self.runs):
            return  # a campaign for everyone is on: no withdrawal today
        _withdrawal(pop.user_index, self.habit, np.float32(0.01), np.float32(c.withdrawal_hazard),
                    pop.seg["deal_sensitivity"], pop.segment, model.today.hazard_ratio)


def _drawn(new, targets, channel, organic, mark):
    """The new users who heard of a campaign today (``np.isin(new, targets)``) and joined through
    the ``organic`` channel, in order (``mark``: the scratch of ``sim.kernels.positions_in``)."""
    heard = new[positions_in(new, targets, mark)]
    return heard[channel[heard] == organic]


@dataclass
class _Run:
    """A campaign run active today: the campaign and the key of this run (campaign index, repetition)."""

    key: int
    campaign: Campaign


# ====================================================================================== compiled passes
@jit
def _withdrawal(users, habit, threshold32, hazard32, deal_sensitivity, segment, hazard_ratio):
    """Users with a deal habit above ``threshold32`` churn more while no campaign is on: their hazard
    ratio x ``1 + hazard32 x habit x deal sensitivity``, with numpy's float32 and float64 steps. One
    pass instead of a mask, three gathers and a scatter."""
    for i in users:
        h = habit[i]
        if h > threshold32:
            x = hazard32 * h
            hazard_ratio[i] *= np.float32(1.0 + np.float64(x) * deal_sensitivity[segment[i]])


@jit
def _offers(v, u, terms, day, columns, new_user_days):
    """The best offer of today's runs for each visitor (``u[j, i]``: the uniform of run ``j`` for
    visitor ``i``; ``terms``: per run reach, new_only, single_use, discount, key; ``columns``:
    joined_day and the key of the offer each person used): run ``j`` is offered when the uniform is
    below its reach, to new users only if ``new_only[j]``, and not again after a use if
    ``single_use[j]``; of the runs offered the one with the largest discount wins (the earlier on a
    tie: no stacking). Returns the discount and the run of each visitor (0 and -1 without an offer)
    and the positions of those with one."""
    reach, new_only, single_use, discount, key = terms
    joined_day, used = columns
    n = v.size
    best = np.zeros(n, dtype=np.float64)
    run_of = np.full(n, -1, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        p = v[i]
        for j in range(discount.size):
            if not u[j, i] < reach[j]:
                continue
            if new_only[j] and not day - joined_day[p] < new_user_days:
                continue
            if single_use[j] and used[p] == key[j]:
                continue
            if discount[j] > best[i]:
                best[i] = discount[j]
                run_of[i] = j
        if run_of[i] >= 0:
            pos[m] = i
            m += 1
    return best, run_of, pos[:m]


@jit
def _expansion(v, pos, run_of, key, coef, expanded, deal_sensitivity, segment):
    """The visitors at ``pos`` not yet expanded by their run (``expanded`` holds the key of the last
    run that expanded a person) get its expansion, ``coef[run] x deal sensitivity``, once per run:
    marks them and returns them with their amounts, in order (people are distinct)."""
    people = np.empty(pos.size, dtype=np.int64)
    amount = np.empty(pos.size, dtype=np.float64)
    m = 0
    for i in pos:
        p = v[i]
        j = run_of[i]
        if expanded[p] != key[j]:
            people[m] = p
            amount[m] = coef[j] * deal_sensitivity[segment[p]]
            expanded[p] = key[j]
            m += 1
    return people[:m], amount[:m]
