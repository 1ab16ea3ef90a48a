"""The P&L (issue 22, point 1): the statement's identities, who funds an incentive, first-party
sales, fixed costs that cancel in comparisons, and the terminal value of the users left."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from conftest import simulate
from sim.economics import TOTALS, annuity_by_age, gmv_margin, hazard_by_age

COSTS = [TOTALS[c] for c in TOTALS if c != "revenue"]
EVERYTHING = ("mechanisms.group_buy.enabled=true", "mechanisms.promotions.enabled=true", "mechanisms.content.enabled=true",
              "mechanisms.loyalty.enabled=true", "mechanisms.winback.enabled=true", "mechanisms.assist.enabled=true")


@pytest.fixture(scope="module")
def busy():
    """A run with co-funded incentives, first-party sales and a fixed operating cost."""
    return simulate(*EVERYTHING, "platform.first_party_share=0.3", "platform.operating_cost_per_1000=5",
                    "mechanisms.promotions.platform_share=0.4", scenario="default")


def test_the_statement_adds_up_every_day(busy):
    d = busy.daily
    assert np.allclose(d["contribution"], d["revenue"] - d[["goods_cost", "variable_cost", "incentive_cost", "fraud_loss"]].sum(axis=1))
    assert np.allclose(d["profit"], d["contribution"] - d["acquisition_cost"] - d["operating_cost"])
    assert np.allclose(d["profit"], d["revenue"] - d[COSTS].sum(axis=1))
    assert np.allclose(d[[c for c in d.columns if c.startswith("revenue_")]].sum(axis=1), d["revenue"])
    assert np.allclose(d[[c for c in d.columns if c.startswith("merchant_") and c != "merchant_funded"]].sum(axis=1),
                       d["merchant_funded"])
    p = busy.config.platform
    assert np.allclose(d["revenue_first_party"], 0.3 * d["gmv"])
    assert np.allclose(d["revenue_commission"], p.take_rate * 0.7 * d["gmv"])
    assert np.allclose(d["cost_goods"], 0.3 * d["gmv"] * (1 - p.first_party_margin))
    assert np.allclose(d["cost_payment"], p.payment_rate * d["gmv"])
    assert np.allclose(d["cost_fulfilment"], 0.3 * d["gmv"] * p.fulfilment_rate)
    assert np.allclose(d["operating_cost"], 5 * d["market_size"] / 1000)
    s = busy.summary
    for key in ("revenue", "contribution", "profit", "merchant_funded", *COSTS):
        assert s[key] == pytest.approx(d[key].sum()), key
    assert s["profit_with_terminal"] == pytest.approx(s["profit"] + s["terminal_value"])
    assert d["merchant_funded"].sum() > 0 and d["cost_content_live_discounts"].sum() == 0  # streams: merchants fund them


@pytest.mark.parametrize("mechanism, account", [("group_buy", "group_buy_subsidy"), ("promotions", "promotion_discounts")])
def test_who_funds_an_incentive_moves_its_cost_not_the_behaviour(mechanism, account):
    runs = {share: simulate(f"mechanisms.{mechanism}.enabled=true", f"mechanisms.{mechanism}.platform_share={share}")
            for share in (0.0, 0.25, 1.0)}
    base = runs[1.0].daily
    total = base[f"cost_{account}"].sum()
    assert total > 0
    for share, r in runs.items():
        d = r.daily
        for col in ("users", "orders", "gmv", "revenue"):  # what buyers see is the same
            assert (d[col] == base[col]).all(), (share, col)
        assert d[f"cost_{account}"].sum() == pytest.approx(share * total)
        merchant = d[f"merchant_{account}"].sum() if share < 1 else 0.0
        assert merchant == pytest.approx((1 - share) * total)
        assert d["profit"].sum() == pytest.approx(base["profit"].sum() + (1 - share) * total)


def test_first_party_sales_change_money_not_behaviour():
    market = simulate("platform.payment_rate=0")
    own = simulate("platform.payment_rate=0", "platform.first_party_share=1", "platform.first_party_margin=0.05",
                   "platform.fulfilment_rate=0")
    a, b = market.daily, own.daily
    assert (a["gmv"] == b["gmv"]).all() and (a["users"] == b["users"]).all()
    assert b["revenue_commission"].sum() == 0
    assert np.allclose(b["revenue_first_party"] - b["goods_cost"], 0.05 * b["gmv"])  # the gross margin
    # a first-party margin equal to the take rate leaves the contribution where the commission did
    same = simulate("platform.payment_rate=0", "platform.first_party_share=1", "platform.first_party_margin=0.05",
                    "platform.fulfilment_rate=0", "platform.take_rate=0.05")
    assert np.allclose(same.daily["contribution"], a["contribution"])


def test_a_fixed_operating_cost_cancels_in_a_comparison():
    c0 = sim.compare(["default", "referral_double"], replicates=2, overrides=["population.size=2000", "horizon=40"],
                     plots=False, workers=1)
    c1 = sim.compare(["default", "referral_double"], replicates=2, overrides=["population.size=2000", "horizon=40",
                                                                                "platform.operating_cost_per_1000=50"],
                     plots=False, workers=1)
    d0, d1 = (c.differences.set_index(["strategy", "metric"]) for c in (c0, c1))
    assert d1.loc[("referral_double", "profit"), "mean_difference"] == pytest.approx(d0.loc[("referral_double", "profit"), "mean_difference"])
    assert c1.horizon["profit"].mean() < c0.horizon["profit"].mean()


def test_cohort_ltv_uses_the_margin_after_payment():
    cheap, dear = simulate("platform.payment_rate=0"), simulate("platform.payment_rate=0.02")
    for r in (cheap, dear):
        c = r.cohorts
        margin = gmv_margin(r.config.platform)
        assert np.allclose(c["contribution"], margin * c["gmv"] + r.config.platform.ad_revenue_per_visit_rmb * c["retained"])
    assert dear.channels["ltv_30"].sum() < cheap.channels["ltv_30"].sum()


# ------------------------------------------------------------------------------ the terminal value
def test_the_life_table_recovers_a_constant_hazard():
    h, cohorts, ages = 0.01, 200, 100
    alive = np.zeros((cohorts, ages))
    alive[:, 0] = 10_000
    for a in range(1, ages):
        alive[:, a] = alive[:, a - 1] * (1 - h)
    for c in range(cohorts):  # cells a cohort has not reached are zero, as the recorder leaves them
        alive[c, max(0, cohorts - c):] = 0
    est = hazard_by_age(alive)
    assert np.allclose(est, h)


def test_annuity_matches_the_geometric_series():
    h, r, years = 0.002, 0.1, 3
    got = annuity_by_age(np.full(50, h), np.array([0, 10, 400]), years, r)
    q = (1 - h) * (1 + r) ** (-1 / 365)
    n = 365 * years
    assert np.allclose(got, q * (1 - q**n) / (1 - q))
    # no discounting and no leaving: every day counts
    assert np.allclose(annuity_by_age(np.zeros(5), np.array([3]), 1, 0.0), 365)


def test_terminal_value_follows_its_settings():
    base = simulate()
    assert base.summary["terminal_value"] > 0
    none = simulate("platform.terminal_years=0")
    assert none.summary["terminal_value"] == 0 and none.summary["profit_with_terminal"] == pytest.approx(none.summary["profit"])
    longer, dearer = simulate("platform.terminal_years=5"), simulate("platform.discount_rate=0.5")
    assert longer.summary["terminal_value"] > base.summary["terminal_value"] > dearer.summary["terminal_value"]
    assert (longer.daily["users"] == base.daily["users"]).all()


@pytest.mark.slow
def test_projected_survival_is_close_to_simulating_another_year():
    """The life table of a year, continued, against the same users simulated a second year: the
    projection errs low (a constant tail of hazards that keep falling) by less than a quarter."""
    from sim.engine import GrowthModel
    from sim.vocabulary import State

    for seed in (0, 1):
        cfg = sim.compose("default", ["population.size=20000", "horizon=730"], seed=seed)
        m = GrowthModel(cfg)
        for _ in range(365):
            m.step()
        alive = m.pop.alive()
        hazard = hazard_by_age(m.metrics.cohort_alive[:365].sum(axis=1))
        projected = annuity_by_age(hazard, m.day - m.pop.joined_day[alive].astype(np.int64), 1.0, 0.0).mean()
        stayed = np.zeros(alive.size)
        for _ in range(365):
            m.step()
            stayed += m.pop.state[alive] != State.CHURNED
        assert 0.75 * stayed.mean() <= projected <= 1.05 * stayed.mean(), (seed, projected, stayed.mean())


def test_an_old_key_is_refused_with_its_new_name():
    from sim.schema import ConfigError

    with pytest.raises(ConfigError, match="subsidy_share: renamed to platform_share"):
        sim.compose("default", ["mechanisms.group_buy.subsidy_share=0.3"])


def test_the_run_report_explains_every_line(tmp_path):
    import html as h
    import re

    r = sim.run("default", overrides=["population.size=2000", "horizon=40", "mechanisms.group_buy.enabled=true"],
                out=tmp_path, plots=False)
    page = h.unescape((r.path / "report.html").read_text())
    table = page[page.index("<table class='pnl'>"): page.index("</table>", page.index("<table class='pnl'>"))]
    labels = re.findall(r"<tr class='(?:line|account)'><td>([^<]+)</td>", table)
    assert labels[:2] == ["GMV", "revenue"] and labels[-2:] == ["+ terminal value", "= profit with terminal value"]
    for line in ("= contribution", "= profit", "- incentive cost", "memo: incentives merchants funded", "group buy subsidy"):
        assert line in labels, line
    assert "the platform's 50%; merchants fund the rest" in table and "the merchants' 50%" in table
    rows = re.findall(r"<tr class='(?:line|account)'><td>[^<]+</td><td class='num'>([^<]+)</td><td class='num'>[^<]+</td><td>([^<]*)</td>", table)
    assert len(rows) == len(labels) and all(what.strip() for _, what in rows)  # every line says what it is
    profit = dict(zip(labels, (float(v.replace(",", "")) for v, _ in rows)))["= profit"]
    assert profit == pytest.approx(r.summary["profit"], abs=1)
    from sim.report import pnl_rows

    no_fraud = [label for label, *_ in pnl_rows(dict(r.summary, fraud_loss=0.0), r.daily, r.config)]
    assert "= contribution" in no_fraud and "- fraud loss" not in no_fraud  # the line stays when a cost above it is nil
