"""Money: a P&L booked daily into named accounts, and the value of the users left at the horizon.

The statement (DESIGN section 3, Economics), one line per daily column:

=====================  ==========================================================================
revenue                commission (take rate x marketplace GMV) + first-party sales + advertising
                       + fees (membership)
- goods_cost           cost of the goods the platform sells itself (first-party GMV x (1 - margin))
- variable_cost        payment processing (all GMV) and fulfilment (first-party orders)
- incentive_cost       rewards, coupons, subsidies, commissions: the platform's share of each
                       (``merchant_funded`` is the merchants' share, a memo line, not a cost)
- fraud_loss           what fraud took and what screening it cost
= contribution         what the users on the platform contribute before acquisition and fixed costs
- acquisition_cost     paid installs, KOL fees, livestream fees, win-back messages
- operating_cost       fixed operating cost (staff, R&D, G&A), per day per 1,000 people in the market
= profit               operating profit
=====================  ==========================================================================

Each mechanism declares its accounts and their category; every account becomes a daily column
(``revenue_<account>`` or ``cost_<account>``; ``merchant_<account>`` for the merchants' share of an
incentive they co-fund) so the source of every yuan can be traced. Who funds an incentive is a
setting of its mechanism (``platform_share``: 1 the platform, 0 the merchants; a share between):
what the buyer sees is the same either way, only the platform's cost changes.

At the horizon, ``sim.metrics.terminal_value`` values the users still there: their expected
discounted contribution over the next ``platform.terminal_years`` years, from the model's own
survival by age on the platform (:func:`hazard_by_age`, :func:`annuity_by_age`) and the recent
contribution per user. Horizon measures (CAC by channel, cohort LTV,
payback day) are computed in ``sim.metrics`` with the same margin per yuan of GMV (:func:`gmv_margin`).
"""

from __future__ import annotations

import numpy as np

#: account categories, in the order of the statement; ``revenue`` adds, every other one is a cost
CATEGORIES = ("revenue", "goods", "variable", "incentive", "fraud", "acquisition", "operating")
#: the daily total column of each category
TOTALS = {"revenue": "revenue", "goods": "goods_cost", "variable": "variable_cost", "incentive": "incentive_cost",
          "fraud": "fraud_loss", "acquisition": "acquisition_cost", "operating": "operating_cost"}
#: costs deducted before the contribution line (the rest, acquisition and fixed costs, after it)
BEFORE_CONTRIBUTION = ("goods", "variable", "incentive", "fraud")
#: days of recent contribution per user the terminal value carries forward
TERMINAL_WINDOW = 28

#: what each line of the statement means (the run report explains every line with these; each
#: account's own line is in ``ACCOUNTS``)
LINES = {
    "gmv": "value of all orders at the prices buyers paid (first-party and marketplace)",
    "revenue": "commission + first-party sales + advertising + fees",
    "goods_cost": "what the first-party goods cost the platform (their sales x (1 - gross margin))",
    "variable_cost": "payment processing on all GMV and fulfilment of first-party orders",
    "incentive_cost": "rewards, coupons, subsidies and commissions the platform pays",
    "merchant_funded": "the merchants' share of co-funded discounts (a memo: not the platform's cost)",
    "fraud_loss": "what fake accounts and orders took, and the cost of screening them",
    "contribution": "revenue - goods - payment and fulfilment - incentives - fraud: what users contribute",
    "acquisition_cost": "paid installs, KOL and livestream fees, win-back messages",
    "operating_cost": "fixed operating cost (staff, R&D, general and administrative)",
    "profit": "operating profit: contribution - acquisition - fixed operating cost",
    "terminal_value": "expected discounted contribution of the users left at the horizon",
    "profit_with_terminal": "profit + terminal value",
}


#: what each account books (the run report's P&L shows it beside the account)
ACCOUNTS = {
    "commission": "take rate x GMV of the marketplace (merchants' sales)",
    "first_party": "sales of the goods the platform sells itself",
    "ads": "advertising revenue per visit",
    "membership_fees": "paid membership fees (loyalty)",
    "goods": "first-party sales x (1 - gross margin)",
    "payment": "payment processing on every yuan paid",
    "fulfilment": "warehousing and delivery of first-party orders",
    "referral_rewards": "rewards per accepted invitation, to inviter and invitee (cash, coupons or points)",
    "group_buy_subsidy": "the discount of filled teams",
    "assist_subsidy": "the discounts friends' assists unlocked",
    "promotion_discounts": "campaign discounts on the orders that used them",
    "member_discounts": "members' discounts on their orders",
    "loyalty_points": "points redeemed on orders",
    "winback_coupons": "win-back coupons used",
    "distribution_commissions": "resellers' commissions on the orders they brought",
    "content_ugc_rewards": "rewards for reviews and posts",
    "content_live_discounts": "livestream price cuts on the orders of viewers",
    "delay_compensation": "compensation for late orders (service capacity)",
    "fraud_farmed": "what fake accounts took from subsidies and rewards",
    "fraud_screening": "the cost of screening sign-ups and orders",
    "referral_fraud": "rewards paid on fake referrals",
    "paid_ads": "paid installs (cost per install rising with volume)",
    "content_kol_fees": "KOL post fees",
    "content_live_fees": "host and production fees of livestream days",
    "winback_messages": "messages to lapsed users",
    "operating": "fixed operating cost per 1,000 people in the market",
}


class Economics:
    def __init__(self, horizon: int, platform=None):
        self.horizon = horizon
        self.category: dict[str, str] = {}
        self.daily: dict[str, np.ndarray] = {}
        self.platform_share: dict[str, float] = {}  # incentive account -> share the platform funds
        self.merchant: dict[str, np.ndarray] = {}  # the merchants' share of co-funded incentives
        self.gmv = np.zeros(horizon)
        self.day = 0
        self.declare("commission", "revenue")
        self.declare("ads", "revenue")
        if platform is not None:
            if platform.first_party_share:
                self.declare("first_party", "revenue")
                self.declare("goods", "goods")
                if platform.fulfilment_rate:
                    self.declare("fulfilment", "variable")
            if platform.payment_rate:
                self.declare("payment", "variable")
            if platform.operating_cost_per_1000:
                self.declare("operating", "operating")

    def declare(self, account: str, category: str, platform_share: float = 1.0) -> None:
        """An account of ``category``; an incentive's cost is split: ``platform_share`` of every
        amount booked is the platform's cost, the rest a memo of what merchants funded."""
        if category not in CATEGORIES:
            raise ValueError(f"account {account!r}: category {category!r} is not one of {CATEGORIES}")
        if self.category.get(account, category) != category:
            raise ValueError(f"account {account!r} declared as {self.category[account]!r} and {category!r}")
        if not 0.0 <= platform_share <= 1.0 or (platform_share < 1.0 and category != "incentive"):
            raise ValueError(f"account {account!r}: platform_share {platform_share} (a share in [0, 1], of incentives only)")
        self.category[account] = category
        self.daily.setdefault(account, np.zeros(self.horizon))
        if platform_share < 1.0:
            self.platform_share[account] = platform_share
            self.merchant.setdefault(account, np.zeros(self.horizon))

    def book(self, account: str, amount: float) -> None:
        """Add ``amount`` (RMB, >= 0) to ``account`` for today. For an incentive, ``amount`` is its
        whole value; the platform's share is booked to the account, the merchants' to the memo."""
        if not amount >= 0 or amount == float("inf"):  # catches NaN too
            from sim.schema import SimulationError

            raise SimulationError(f"day {self.day}: account {account} = {amount} (must be a finite, non-negative number)")
        share = self.platform_share.get(account)
        if share is None:
            self.daily[account][self.day] += amount
        else:
            self.daily[account][self.day] += amount * share
            self.merchant[account][self.day] += amount * (1.0 - share)

    def book_gmv(self, amount: float) -> None:
        self.gmv[self.day] += amount

    def total(self, category: str, day: int | slice = slice(None)) -> np.ndarray | float:
        acc = [a for a, c in self.category.items() if c == category]
        if not acc:
            return np.zeros(self.horizon)[day]
        return np.sum([self.daily[a][day] for a in acc], axis=0)

    def columns(self) -> dict[str, np.ndarray]:
        """The daily money columns (before trimming to the days simulated)."""
        totals = {TOTALS[c]: self.total(c) for c in CATEGORIES}
        contribution = totals["revenue"] - sum(totals[TOTALS[c]] for c in BEFORE_CONTRIBUTION)
        cols = {
            "gmv": self.gmv,
            **totals,
            "merchant_funded": np.sum(list(self.merchant.values()), axis=0) if self.merchant else np.zeros(self.horizon),
            "contribution": contribution,
            "profit": contribution - totals["acquisition_cost"] - totals["operating_cost"],
        }
        for account, category in self.category.items():
            prefix = "revenue" if category == "revenue" else "cost"
            cols[f"{prefix}_{account}"] = self.daily[account]
        for account, values in self.merchant.items():
            cols[f"merchant_{account}"] = values
        return cols


def gmv_margin(platform) -> float:
    """What a yuan of GMV leaves the platform after the goods and the variable costs: the
    commission on the marketplace's share, the gross margin on the first-party share, less payment
    processing and first-party fulfilment (cohort LTV and the P&L use the same rate)."""
    first = platform.first_party_share
    return (platform.take_rate * (1.0 - first) + first * platform.first_party_margin
            - platform.payment_rate - first * platform.fulfilment_rate)


def settle_day(economics: Economics, platform, basket_total: float, visits: int, market: float) -> None:
    """Book a day's platform-level lines: commission and first-party sales on today's GMV, the cost
    of first-party goods, payment and fulfilment, advertising on visits, the fixed operating cost."""
    first = platform.first_party_share
    economics.book("commission", platform.take_rate * (1.0 - first) * basket_total)  # (x 1.0 is exact: a marketplace's as before)
    economics.book("ads", platform.ad_revenue_per_visit_rmb * visits)
    if first:
        economics.book("first_party", first * basket_total)
        economics.book("goods", first * basket_total * (1.0 - platform.first_party_margin))
        if platform.fulfilment_rate:
            economics.book("fulfilment", first * basket_total * platform.fulfilment_rate)
    if platform.payment_rate:
        economics.book("payment", platform.payment_rate * basket_total)
    if platform.operating_cost_per_1000:
        economics.book("operating", platform.operating_cost_per_1000 * market / 1000.0)


def hazard_by_age(alive: np.ndarray, min_at_risk: int = 30, tail_ages: int = 90) -> np.ndarray:
    """Daily hazard of leaving by age on the platform, pooled over join cohorts, from ``alive``
    (members not churned, by join day and age; cells of ages a cohort has not reached are ignored):
    h(a) = 1 - sum alive(a + 1) / sum alive(a) over the cohorts observed at both ages (a life table,
    as Kaplan-Meier's, with every cause of leaving the model has, idleness included). Ages observed
    in fewer than ``min_at_risk`` members, and those beyond, take the hazard pooled over the last
    ``tail_ages`` well-observed ages (at most the later half of them), a constant tail: hazards fall
    with tenure, so it errs low."""
    cohorts, ages = alive.shape
    at_risk, stayed = np.zeros(max(ages - 1, 0)), np.zeros(max(ages - 1, 0))
    for a in range(ages - 1):  # one pass per age (at most 365), not per person
        seen = cohorts - a - 1  # cohorts that reached age a + 1
        if seen <= 0:
            break
        at_risk[a] = alive[:seen, a].sum()
        stayed[a] = alive[:seen, a + 1].sum()
    good = np.flatnonzero(at_risk >= min_at_risk)
    hazard = np.zeros(ages - 1)
    if good.size == 0:
        return hazard
    last = good[-1]
    hazard[: last + 1] = np.clip(1.0 - np.divide(stayed[: last + 1], at_risk[: last + 1], out=np.ones(last + 1),
                                                  where=at_risk[: last + 1] > 0), 0.0, 1.0)
    tail = good[good > last - max(1, min(tail_ages, (last + 1) // 2))]  # (the later half at most: not the first days' hazards)
    hazard[last + 1:] = np.clip(1.0 - stayed[tail].sum() / at_risk[tail].sum(), 0.0, 1.0)
    hazard[: last + 1][at_risk[: last + 1] < min_at_risk] = hazard[last + 1:].max(initial=hazard[last])
    return hazard


def annuity_by_age(hazard: np.ndarray, ages: np.ndarray, years: float, discount_rate: float) -> np.ndarray:
    """For users of each age in ``ages`` (days on the platform today), the expected discounted number
    of days they stay over the next ``years``: sum over t = 1..T of (1 + r)^(-t/365) x S(t), with
    S(t) = prod over the ages they pass of (1 - hazard); ages beyond ``hazard`` keep its last value."""
    ages = np.asarray(ages, dtype=np.int64)
    n_days = int(round(365 * years))
    if ages.size == 0 or n_days <= 0:
        return np.zeros(ages.size)
    top = int(ages.max()) + n_days
    h = np.empty(top)
    k = min(hazard.size, top)
    h[:k] = hazard[:k]
    h[k:] = hazard[-1] if hazard.size else 0.0
    log_stay = np.concatenate([[0.0], np.cumsum(np.log1p(-np.minimum(h, 1.0 - 1e-12)))])  # L(x) = sum_{s<x} log(1 - h(s))
    discount = (1.0 + discount_rate) ** (-np.arange(1, n_days + 1) / 365.0)
    distinct, where = np.unique(ages, return_inverse=True)
    t = np.arange(1, n_days + 1)
    per_age = np.exp(log_stay[distinct[:, None] + t[None, :]] - log_stay[distinct][:, None]) @ discount
    return per_age[where]


def recent_contribution_per_user(daily_contribution: np.ndarray, users: np.ndarray, window: int = TERMINAL_WINDOW) -> float:
    """Contribution per user per day over the last ``window`` days (RMB): the rate the users left
    at the horizon are assumed to keep contributing at."""
    c, u = np.asarray(daily_contribution)[-window:], np.asarray(users)[-window:]
    return float(c.sum() / u.sum()) if u.sum() > 0 else 0.0
