"""The recorder: daily series, cohorts by join day and channel, and horizon metrics.

Definitions (also in the README):
- ``dau``: users who visited today (joining counts as a visit); ``wau`` / ``mau``: distinct visitors
  in the last 7 / 30 days; ``active_users``: users in state active or loyal;
- ``new_users``, ``churned_users``, ``reactivated_users``: today's transitions;
- ``k_factor``: invitations accepted in the last 30 days per user who joined in the last 30 days;
- cohort ``retained``: members who visited at that age (classic day-N retention); ``alive``: members
  not churned; ``revenue``: take rate x their GMV plus advertising on their visits; ``contribution``:
  what their orders and visits leave after goods, payment and fulfilment (``economics.gmv_margin``
  x GMV + advertising): cohort LTV, and so payback, are sums of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim import kernels
from sim.economics import gmv_margin
from sim.model_view import Model
from sim.vocabulary import CHANNELS, ORDER_SOURCES, STATE_NAMES, State

MAX_COHORT_AGE = 366  # ages tracked per cohort: 0 .. 365 days
#: windows (days) of the distinct-buyer columns ``active_buyers_<days>``: a month, and the trailing
#: twelve months platforms report (Pinduoduo's "annual active buyers" are distinct buyers over the
#: twelve months to a date)
TRAILING_WINDOWS = (30, 365)
TRAILING_COLUMNS = (*(f"active_buyers_{w}" for w in TRAILING_WINDOWS), "gmv_365")
K_WINDOW = 30
ONE, MINUS_ONE = np.ones(1, dtype=np.int64), -np.ones(1, dtype=np.int64)  # a cohort gains or loses a member

CORE_COUNTERS = ("new_users", "churned_users", "reactivated_users", "orders", "invites_sent", "invites_accepted")
#: the daily series the recorder keeps whatever the mechanisms (the money columns come from ``economics``)
SERIES = ("cumulative_users", "dau", "wau", "mau", "active_users", "users", "k_factor", "category_gini", "buyers",
          *TRAILING_COLUMNS, *CORE_COUNTERS, *(f"orders_{src}" for src in ORDER_SOURCES), *(f"new_{c}" for c in CHANNELS),
          *(f"n_{s}" for s in STATE_NAMES), "market_size")
#: the daily column of the people in the market (the population, unless the market grows:
#: ``population.entry``); calibration targets stated as shares of the market divide by it
MARKET_COLUMN = "market_size"


def _stack_rows(columns: dict[str, np.ndarray], length: int) -> np.ndarray:
    """Copy columns of ``length`` into the rows of one matrix; the dict then holds views of the rows."""
    table = np.vstack(list(columns.values())) if columns else np.zeros((0, length))
    for row, name in enumerate(columns):
        columns[name] = table[row]
    return table


def _by_join_day(cells: np.ndarray, horizon: int) -> np.ndarray:
    """A read-only (join day, channel, age) view of cells stored as (day, ages - 1 - age, channel):
    cell (c, ch, a) lies at (c + a, ages - 1 - a, ch)."""
    s_day, s_slot, s_channel = cells.strides
    ages, channels = cells.shape[1], cells.shape[2]
    view = np.lib.stride_tricks.as_strided(cells[0, ages - 1:], shape=(horizon, channels, ages),
                                           strides=(s_day, s_channel, s_day - s_slot))
    view.flags.writeable = False
    return view


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal)."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return 0.0
    return float((2.0 * np.sum(np.arange(1, n + 1) * x) / (n * total)) - (n + 1.0) / n)


class Recorder:
    def __init__(self, model: Model):
        cfg = model.cfg
        H, C = cfg.horizon, len(CHANNELS)
        self.horizon = H
        self.ages = min(H, MAX_COHORT_AGE)
        self.take_rate = cfg.platform.take_rate
        self.margin = gmv_margin(cfg.platform)
        self.ad_rate = cfg.platform.ad_revenue_per_visit_rmb
        self.series: dict[str, np.ndarray] = {}

        for name in SERIES:
            self.series[name] = np.zeros(H)
        self.counter_names: list[str] = [*CORE_COUNTERS, *(f"orders_{src}" for src in ORDER_SOURCES)]
        self.cohort_users = np.zeros((H, C), dtype=np.int64)
        self.alive_now = np.zeros((H, C), dtype=np.int64)  # members not churned, by join day and channel
        # Cohort cells are read as (join day, channel, age) but stored by the day they describe:
        # (join day + age, ages - 1 - age, channel), so that a day's cells of every cohort are one
        # block of ages x channels: the day's visits and orders land in a few kilobytes. The read
        # views are strided.
        self._cells = tuple(np.zeros((H + self.ages, self.ages, C), dtype=dt) for dt in (np.int32, np.int32, np.float64))
        self.days_recorded = 0
        self._table_sizes: tuple[int, ...] | None = None  # see _tables
        # Distinct buyers over trailing windows: each person's last order day, and how many people
        # last ordered on each day (a window's buyers are a sum over its days).
        self.last_order = np.full(model.pop.n, -1, dtype=np.int32)
        self.last_ordered_on = np.zeros(H, dtype=np.int64)

    @property
    def cohort_retained(self) -> np.ndarray:
        """Visitors by (join day, channel, age): members of a cohort who visited at that age."""
        return _by_join_day(self._cells[0], self.horizon)

    @property
    def cohort_alive(self) -> np.ndarray:
        """Members not churned by (join day, channel, age)."""
        return _by_join_day(self._cells[1], self.horizon)

    @property
    def cohort_gmv(self) -> np.ndarray:
        """GMV (RMB) by (join day, channel, age)."""
        return _by_join_day(self._cells[2], self.horizon)

    def declare(self, name: str) -> None:
        """A mechanism's daily counter column."""
        if name not in self.series:
            self.series[name] = np.zeros(self.horizon)
        if name not in self.counter_names:
            self.counter_names.append(name)

    # ------------------------------------------------------------------ updates from the engine
    # Each adds to the cells of the people's own cohorts only (not a pass over every cohort: a day
    # costs the same whatever the horizon).
    def joined(self, idx: np.ndarray, pop) -> None:
        self._count_alive(idx, pop, ONE)

    def left(self, idx: np.ndarray, pop) -> None:
        self._count_alive(idx, pop, MINUS_ONE)

    def _count_alive(self, idx: np.ndarray, pop, delta: np.ndarray) -> None:
        if idx.size:
            key = pop.joined_day[idx].astype(np.int64) * len(CHANNELS) + pop.channel[idx]
            kernels.add_at(self.alive_now.reshape(-1), key, delta)

    def _tables(self, economics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The daily columns as rows of two matrices (the series and the money accounts; the dicts'
        arrays become views of the rows), so that a day's check is one slice, and the rows of the
        counters (in the order of ``counter_names``). Made at the first record, again if columns
        were declared since."""
        sizes = (len(self.series), len(self.counter_names), id(economics), len(economics.daily))
        if self._table_sizes != sizes:
            self._series_rows = _stack_rows(self.series, self.horizon)
            self._account_rows = _stack_rows(economics.daily, self.horizon)
            names = list(self.series)
            self._counter_rows = np.array([names.index(name) for name in self.counter_names], dtype=np.int64)
            self._channel_rows = np.array([names.index(f"new_{name}") for name in CHANNELS], dtype=np.int64)
            self._state_rows = np.array([names.index(f"n_{name}") for name in STATE_NAMES], dtype=np.int64)
            self._table_sizes = sizes
        return self._series_rows, self._account_rows, self._counter_rows

    def record(self, model: Model) -> None:
        day, pop, today = model.day, model.pop, model.today
        s = self.series
        rows, _, counter_rows = self._tables(model.economics)
        rows[counter_rows, day] = [today.counters.get(name, 0.0) for name in self.counter_names]
        new_by_channel = np.bincount(pop.channel[today.new_users], minlength=len(CHANNELS))
        rows[self._channel_rows, day] = new_by_channel
        counts = pop.state_counts()
        rows[self._state_rows, day] = counts
        s["market_size"][day] = pop.market_size()
        s["cumulative_users"][day] = (s["cumulative_users"][day - 1] if day else 0.0) + s["new_users"][day]  # whole numbers: exact
        s["dau"][day] = today.visitors.size
        kernels.note_last_orders(today.buyers, day, self.last_order, self.last_ordered_on)
        s["buyers"][day] = self.last_ordered_on[day]  # distinct buyers today: the people whose last order is today
        for window in TRAILING_WINDOWS:
            lo = max(0, day - window + 1)
            s[f"active_buyers_{window}"][day] = self.last_ordered_on[lo: day + 1].sum()
        s["gmv_365"][day] = model.economics.gmv[max(0, day - 364): day + 1].sum()
        s["wau"][day], s["mau"][day] = kernels.count_recent(pop.last_visit, max(day - 6, 0), max(day - 29, 0))
        s["active_users"][day] = counts[State.ACTIVE] + counts[State.LOYAL]
        s["users"][day] = counts[State.ACTIVE] + counts[State.LOYAL] + counts[State.DORMANT]
        lo = max(0, day - K_WINDOW + 1)
        joined = s["new_users"][lo: day + 1].sum()
        s["k_factor"][day] = s["invites_accepted"][lo: day + 1].sum() / joined if joined else 0.0
        s["category_gini"][day] = gini(np.bincount(today.order_category, minlength=model.catalogue.categories))
        self._cohorts(model, new_by_channel)
        self.days_recorded = day + 1
        self.check(day, model.economics)

    def check(self, day: int, economics) -> None:
        """Invariants of one day, cheap enough to leave on: every count and amount is a finite,
        non-negative number. A violation stops the run naming the day and the column."""
        from sim.schema import SimulationError

        # One vectorised test of every column (about a hundred); names are looked up only on failure.
        rows, accounts, _ = self._tables(economics)
        values = np.concatenate([rows[:, day], accounts[:, day], economics.gmv[day: day + 1]])
        if np.isfinite(values).all() and (values >= 0).all():
            return
        names = [*self.series, *(f"account {a}" for a in economics.daily), "gmv"]
        for name, value in zip(names, values.tolist()):
            if not np.isfinite(value) or value < 0:
                raise SimulationError(f"day {day}: {name} = {value} (must be a finite, non-negative number)")

    def _cohorts(self, model: Model, new_by_channel: np.ndarray) -> None:
        """Today's cohort cells; ``new_by_channel``: today's new users per channel (the cohort's size)."""
        day, pop, today = model.day, model.pop, model.today
        self.cohort_users[day] = new_by_channel
        retained, alive, gmv = self._cells
        kernels.record_cohorts(day, today.visitors, today.buyers, today.basket, pop.joined_day, pop.channel,
                               self.alive_now, alive, retained, gmv)

    # ------------------------------------------------------------------ outputs
    def daily(self, economics) -> pd.DataFrame:
        n = self.days_recorded
        cols = {"day": np.arange(n)}
        ordered = ["new_users", "cumulative_users", "dau", "wau", "mau", "active_users", "churned_users",
                   "reactivated_users", "orders", "buyers"]
        for name in ordered:
            cols[name] = self.series[name][:n]
        money = economics.columns()
        for name in MONEY_TOTALS[:5]:
            cols[name] = money[name][:n]
        for name in ("invites_sent", "invites_accepted", "k_factor", "category_gini", *(f"new_{c}" for c in CHANNELS),
                     "users", *(f"n_{s}" for s in STATE_NAMES), "market_size", *TRAILING_COLUMNS):
            cols[name] = self.series[name][:n]
        for name in MONEY_TOTALS[5:]:
            cols[name] = money[name][:n]
        for name in self.counter_names:
            cols.setdefault(name, self.series[name][:n])
        for name, values in money.items():
            cols.setdefault(name, values[:n])
        df = pd.DataFrame(cols)
        ints = [c for c in df.columns if c not in money and c not in ("k_factor", "category_gini")
                and np.all(np.mod(df[c].to_numpy(), 1) == 0)]
        return df.astype({c: "int64" for c in ints})

    def cohorts(self) -> pd.DataFrame:
        """Tidy cohorts: one row per (cohort_day, channel, age); channel 'all' sums the channels."""
        n = self.days_recorded
        frames = []
        cohort, age = np.meshgrid(np.arange(n), np.arange(self.ages), indexing="ij")
        valid = cohort + age < n
        by_channel = [("all", slice(None))] + [(name, c) for c, name in enumerate(CHANNELS)]
        for name, sel in by_channel:
            def take(arr, sel=sel):
                a = arr[:n][:, sel]
                return a.sum(axis=1) if a.ndim == 3 else a
            users = take(self.cohort_users)
            if np.ndim(users) == 2:
                users = users.sum(axis=1)
            users = np.broadcast_to(users[:, None], cohort.shape)
            keep = valid & (users > 0)
            retained = take(self.cohort_retained)
            gmv = take(self.cohort_gmv)
            frames.append(pd.DataFrame({
                "cohort_day": cohort[keep].astype(np.int32),
                "channel": name,
                "age": age[keep].astype(np.int32),
                "users": users[keep].astype(np.int64),
                "retained": retained[keep].astype(np.int64),
                "alive": take(self.cohort_alive)[keep].astype(np.int64),
                "gmv": gmv[keep],
                "revenue": self.take_rate * gmv[keep] + self.ad_rate * retained[keep],
                "contribution": self.margin * gmv[keep] + self.ad_rate * retained[keep],
            }))
        return pd.concat(frames, ignore_index=True)

    def retention_curve(self, channel: int | None = None, max_age: int | None = None) -> np.ndarray:
        """Pooled day-N retention: visitors at age N over members of cohorts old enough to have age N."""
        n = self.days_recorded
        sel = slice(None) if channel is None else channel
        users = self.cohort_users[:n][:, sel]
        users = users.sum(axis=1) if users.ndim == 2 else users
        retained = self.cohort_retained[:n][:, sel]
        retained = retained.sum(axis=1) if retained.ndim == 3 else retained
        top = min(self.ages, n) if max_age is None else min(max_age + 1, self.ages, n)
        out = np.full(top, np.nan)
        for a in range(top):  # one entry per age (at most 366), not per person
            old = n - a
            base = users[:old].sum()
            out[a] = retained[:old, a].sum() / base if base else np.nan
        return out

    def ltv_curve(self, channel: int | None = None) -> np.ndarray:
        """Mean cumulative contribution per cohort member by age (cohorts old enough for each age): LTV."""
        n = self.days_recorded
        sel = slice(None) if channel is None else channel
        users = self.cohort_users[:n][:, sel]
        users = users.sum(axis=1) if users.ndim == 2 else users
        gmv = self.cohort_gmv[:n][:, sel]
        ret = self.cohort_retained[:n][:, sel]
        if gmv.ndim == 3:
            gmv, ret = gmv.sum(axis=1), ret.sum(axis=1)
        rev = self.margin * gmv + self.ad_rate * ret
        top = min(self.ages, n)
        out = np.full(top, np.nan)
        for a in range(top):
            old = n - a
            base = users[:old].sum()
            out[a] = rev[:old, : a + 1].sum() / base if base else np.nan
        return out


def accounts_of(cfg):
    """The money accounts a run of ``cfg`` books (an empty one-day ``Economics``: categories, who
    funds each incentive), and its enabled mechanisms (configured, not set up)."""
    from sim.economics import Economics
    from sim.mechanisms import REGISTRY

    enabled = [REGISTRY[name](mc) for name, mc in cfg.mechanisms.items() if mc.enabled]
    economics = Economics(1, cfg.platform)
    for m in enabled:
        for account, category in m.accounts.items():
            economics.declare(account, category, m.platform_share(account))
    return economics, enabled


def daily_columns(cfg) -> set[str]:
    """The columns of the daily table of a run of ``cfg``, known before running it: the recorder's
    series, the money columns and the accounts and counters of the enabled mechanisms."""
    economics, enabled = accounts_of(cfg)
    return {"day", *SERIES, *economics.columns(), *(c for m in enabled for c in m.columns)}


def run_series(model: Model, daily: pd.DataFrame, name: str) -> np.ndarray:
    """A series of a finished run: ``retention`` (pooled day-N retention, by age), a daily column, or
    ``market_size`` (people in the market each day: the daily column if the run records one, else the
    population size every day)."""
    if name == "retention":
        return model.metrics.retention_curve()
    if name == MARKET_COLUMN and name not in daily:
        return np.full(len(daily), float(model.pop.n))
    return daily[name].to_numpy(np.float64)


# ---------------------------------------------------------------------------------- horizon metrics
def _at(curve: np.ndarray, age: int) -> float:
    return float(curve[age]) if age < curve.size and np.isfinite(curve[age]) else float("nan")


def payback_age(ltv: np.ndarray, cac: float) -> int:
    """First cohort age (days) at which mean contribution per user covers ``cac``; -1 if never."""
    hit = np.flatnonzero(np.nan_to_num(ltv, nan=-1.0) >= cac)
    return int(hit[0]) if hit.size else -1


def channel_table(model: Model, daily: pd.DataFrame) -> pd.DataFrame:
    """Per acquisition channel: users, retention, LTV, cost per user and payback."""
    rec = model.metrics
    rows = []
    for c, name in enumerate(CHANNELS):
        users = int(rec.cohort_users[: rec.days_recorded, c].sum())
        ret = rec.retention_curve(c)
        ltv = rec.ltv_curve(c)
        cost = float(channel_cost(model, name))
        cac = cost / users if users else float("nan")
        rows.append({
            "channel": name, "users": users, "cost": cost, "cac": cac,
            "retention_d1": _at(ret, 1), "retention_d7": _at(ret, 7), "retention_d30": _at(ret, 30),
            "ltv_30": _at(ltv, 30), "ltv_90": _at(ltv, 90), "ltv_180": _at(ltv, 180),
            "payback_day": payback_age(ltv, cac) if users and cac > 0 else (0 if users else -1),
        })
    return pd.DataFrame(rows)


def channel_cost(model: Model, channel: str) -> float:
    """Money spent to acquire users of one channel: the accounts of the mechanisms bringing them."""
    total = 0.0
    for m in model.mechanisms:
        if channel in m.channels:
            total += sum(float(model.economics.daily[a].sum()) for a, cat in m.accounts.items() if cat in ("acquisition", "incentive"))
    return total


#: the P&L lines a run's summary totals over the horizon (``sim.economics`` says what each means);
#: the daily table has the first five first (DESIGN's columns), the others after the acquisition channels
MONEY_TOTALS = ("gmv", "revenue", "incentive_cost", "acquisition_cost", "profit", "goods_cost", "variable_cost",
                "merchant_funded", "fraud_loss", "contribution", "operating_cost")


def terminal_value(model: Model, daily: pd.DataFrame) -> dict:
    """The value of the users left at the horizon: each one's expected discounted days on the
    platform over ``platform.terminal_years`` (the run's own life table of leaving by age on the
    platform, :func:`sim.economics.hazard_by_age`, continued from the user's age today) times the
    contribution per user per day of the last four weeks (rewards paid for bringing new users, the
    cost of growth, left out: the users they buy are not in the value either). Returns ``terminal_value``,
    ``profit_with_terminal`` and their inputs (``terminal_users``, ``contribution_per_user_day``,
    ``terminal_days_per_user``: expected discounted days per user left)."""
    from sim.economics import annuity_by_age, hazard_by_age, recent_contribution_per_user

    p, rec = model.cfg.platform, model.metrics
    growth = [f"cost_{a}" for m in model.mechanisms for a in m.for_new_users]  # rewards for new users: not theirs
    ongoing = daily["contribution"].to_numpy() + daily[growth].to_numpy().sum(axis=1)
    per_user = recent_contribution_per_user(ongoing, daily["users"].to_numpy())
    alive = model.pop.alive()
    days = 0.0
    if p.terminal_years > 0 and alive.size:
        n = rec.days_recorded
        hazard = hazard_by_age(rec.cohort_alive[:n].sum(axis=1))
        age = model.day - model.pop.joined_day[alive].astype(np.int64)
        days = float(annuity_by_age(hazard, age, p.terminal_years, p.discount_rate).sum())
    value = per_user * days
    return {"terminal_value": value, "profit_with_terminal": float(daily["profit"].sum()) + value,
            "terminal_users": int(alive.size), "contribution_per_user_day": per_user,
            "terminal_days_per_user": days / alive.size if alive.size else 0.0}


def summary(model: Model, daily: pd.DataFrame) -> dict:
    """Horizon metrics of one run (plain floats and ints, JSON-ready)."""
    rec = model.metrics
    ret = rec.retention_curve()
    ltv = rec.ltv_curve()
    total_new = float(daily["new_users"].sum())
    spend = float(daily["acquisition_cost"].sum() + daily["incentive_cost"].sum())
    blended_cac = spend / total_new if total_new else float("nan")
    # Day 0's joiners are the seed users, set by adoption.seed_fraction rather than by growth: left
    # out, or a run whose seeds outnumber every later day would peak on day 0.
    new = daily["new_users"].iloc[1:].rolling(7, min_periods=1).mean().to_numpy()
    out = {
        "days": int(len(daily)),
        "population": int(model.pop.n),
        "users_total": int(total_new),
        "users_end": int(daily["users"].iloc[-1]),
        "adoption_share": total_new / model.pop.n,
        "dau_end": int(daily["dau"].iloc[-1]),
        "mau_end": int(daily["mau"].iloc[-1]),
        "dau_mau_end": float(daily["dau"].iloc[-1] / daily["mau"].iloc[-1]) if daily["mau"].iloc[-1] else 0.0,
        "peak_new_users_day": 1 + int(np.argmax(new)) if new.size else 0,
        "retention_d1": _at(ret, 1),
        "retention_d7": _at(ret, 7),
        "retention_d30": _at(ret, 30),
        "orders": int(daily["orders"].sum()),
        **{name: float(daily[name].sum()) for name in MONEY_TOTALS},
        **terminal_value(model, daily),
        "cac_blended": blended_cac,
        "ltv_90": _at(ltv, 90),
        "ltv_180": _at(ltv, 180),
        "payback_day": payback_age(ltv, blended_cac) if spend > 0 else 0,
        "invites_sent": int(daily["invites_sent"].sum()),
        "invites_accepted": int(daily["invites_accepted"].sum()),
        "k_factor": float(daily["invites_accepted"].sum() / total_new) if total_new else 0.0,
    }
    for c in CHANNELS:
        out[f"new_{c}"] = int(daily[f"new_{c}"].sum())
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}
