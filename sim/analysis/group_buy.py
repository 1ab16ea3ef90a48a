"""What group buying (拼团) did in a run or a comparison, from the daily counters: the diagnostic the
reports show when the mechanism is on.

In one run only what the run measured: teams opened, filled and failed (the fill rate counts teams
that closed), people who joined the platform through a team link, joins of teams, and where the team
links went (to non-users, each of them an invitation that also counts towards the receiver's
saturation and the sender's repeat fading, and to people already asked ``ask_tolerance`` times
recently, whom one more request annoys). What group buying displaced needs a run without it: in a
comparison, each strategy with group buying is set against the baseline replicate by replicate
(the same people and luck), channel by channel, so "referral joins -X" is a measured difference,
not an estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.analysis.stats import LEVEL, mean_interval

TEAM_COLUMNS = ("group_buy_teams_opened", "group_buy_teams_filled", "group_buy_teams_failed")
CHANNEL_COLUMNS = ("new_group_buy", "new_referral", "new_organic", "new_paid", "new_assist", "new_content", "new_distribution")


def uses_group_buy(daily: pd.DataFrame) -> bool:
    return "group_buy_teams_opened" in daily and float(daily["group_buy_teams_opened"].sum()) > 0


def run_summary(daily: pd.DataFrame) -> dict[str, float]:
    """Totals over one run's ``daily`` frame (or the mean over replicates of a frame with a
    ``replicate`` column)."""
    cols = [c for c in (*TEAM_COLUMNS, "group_buy_joins", "group_buy_links_sent", "group_buy_links_to_non_users",
                        "group_buy_links_to_asked", "new_group_buy", "new_users") if c in daily]
    if "replicate" in daily:
        t = daily.groupby("replicate")[cols].sum().mean()
    else:
        t = daily[cols].sum()
    out = {c: float(t[c]) for c in cols}
    closed = out.get("group_buy_teams_filled", 0.0) + out.get("group_buy_teams_failed", 0.0)
    out["fill_rate"] = out.get("group_buy_teams_filled", 0.0) / closed if closed else float("nan")
    links = out.get("group_buy_links_sent", 0.0)
    for key in ("group_buy_links_to_non_users", "group_buy_links_to_asked"):
        if key in out:
            out[key.replace("group_buy_links_to_", "share_to_")] = out[key] / links if links else float("nan")
    new = out.get("new_users", 0.0)
    out["share_of_new_users"] = out.get("new_group_buy", 0.0) / new if new else float("nan")
    return out


def displacement(daily: pd.DataFrame, baseline: str, level: float = LEVEL) -> pd.DataFrame:
    """For each strategy of a comparison's ``daily`` frame that used group buying, the paired
    difference from ``baseline`` of the year's joins by channel and in all: one row per (strategy,
    channel) with the mean difference and its t interval over replicates."""
    cols = [c for c in ("new_users", *CHANNEL_COLUMNS) if c in daily]
    totals = daily.groupby(["strategy", "replicate"])[cols].sum()
    if baseline not in totals.index.get_level_values(0):
        return pd.DataFrame()
    base = totals.loc[baseline]
    rows = []
    for strategy in totals.index.get_level_values(0).unique():
        if strategy == baseline or not uses_group_buy(daily[daily["strategy"] == strategy]):
            continue
        t = totals.loc[strategy]
        common = t.index.intersection(base.index)
        for c in cols:
            iv = mean_interval((t.loc[common, c] - base.loc[common, c]).to_numpy(np.float64), level)
            rows.append({"strategy": strategy, "channel": c.removeprefix("new_") if c != "new_users" else "all",
                         "with": float(t.loc[common, c].mean()), "without": float(base.loc[common, c].mean()),
                         "difference": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n})
    return pd.DataFrame(rows)


def verdict(d: pd.DataFrame, strategy: str, baseline: str) -> str:
    """One sentence from :func:`displacement`'s rows of ``strategy``: what group buying brought, what
    it displaced, and the net."""
    rows = d[d["strategy"] == strategy].set_index("channel")
    gb = rows.loc["group_buy", "difference"] if "group_buy" in rows.index else 0.0
    others = rows.drop(index=[c for c in ("group_buy", "all") if c in rows.index])
    lost, gained = others[others["difference"] < 0], others[others["difference"] > 0]
    net = rows.loc["all"] if "all" in rows.index else None
    parts = [f"against {baseline}, group buying brought {gb:,.0f} users through team links"]
    if len(lost):
        parts.append("other channels lost " + ", ".join(
            f"{-r.difference:,.0f} {name} joins [{-r.high:,.0f}, {-r.low:,.0f}]" for name, r in lost.iterrows()))
    if len(gained):
        parts.append("other channels gained " + ", ".join(
            f"{r.difference:,.0f} {name} joins [{r.low:,.0f}, {r.high:,.0f}]" for name, r in gained.iterrows()))
    if net is not None:
        sign = "adds" if net["low"] > 0 else "costs" if net["high"] < 0 else "has no clear net effect on"
        parts.append(f"net: it {sign} users acquired ({net['difference']:+,.0f} [{net['low']:+,.0f}, {net['high']:+,.0f}])")
    return "; ".join(parts) + "."
