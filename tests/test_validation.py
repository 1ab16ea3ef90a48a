"""The stylized-fact validation suite (``sim validate``, ``sim.validate``), at its quick size.

The full suite (``sim validate``) runs the same facts on larger runs with three replicates; here the
facts are checked on one replicate (of the full population and year for the shared runs), enough for each to pass
(the README's table gives the full-size figures). Each fact must also be able to fail: switching off
the behaviour behind a fact makes it fail, and the command line then exits with code 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis import validation
from sim.analysis.validation import FACTS, PENDING, REFERRAL, AcquiredLog, InviteLog, OrderLog
from sim.engine import GrowthModel

# The facts that share the default-scenario runs (the promotion facts pair them with campaign runs),
# and the graph fact, which costs little.
SHARED = ["early_churn", "bass_s_curve", "invitation_saturation", "referred_retention", "post_promotion_dip",
          "promotion_bump_decomposition", "social_graph_structure"]


# Tests reading the shared runs go to one xdist worker (``--dist loadgroup``), so they are made once.
shared_runs = pytest.mark.xdist_group("validation_quick")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The facts that share the default-scenario runs, written to a folder."""
    out = tmp_path_factory.mktemp("validation")
    return sim.validate(quick=True, facts=SHARED, out=out)


@shared_runs
@pytest.mark.parametrize("name", SHARED)
def test_default_settings_reproduce_the_fact(quick, name):
    finding = next(f for f in quick.findings if f.name == name)
    assert finding.status == "pass", f"{name}: {finding.figure}"


@shared_runs
def test_every_finding_states_measure_figure_reference_and_criterion(quick):
    for f in quick.findings:
        assert f.reference and f.figure and f.title
        if f.status != "pending":
            assert f.measured and f.criterion and f.plot is not None


def test_pending_facts_are_reported_but_do_not_fail_the_suite(monkeypatch):
    monkeypatch.setitem(PENDING, "future_fact", ("a_mechanism", "Something not measurable yet", "Someone 2030"))
    v = sim.validate(quick=True, facts=["future_fact"])
    (finding,) = v.findings
    assert finding.status == "pending" and "a_mechanism" in finding.measured and finding.plot is None
    assert v.passed and "1 pending" in v.text()


@shared_runs
def test_validation_folder_holds_report_table_and_a_plot_per_fact(quick):
    path = quick.path
    assert path.is_dir() and not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    plots = {p.stem for p in (path / "plots").glob("*.png")}
    assert plots == set(SHARED)
    html = (path / "report.html").read_text()
    assert all(f"plots/{name}.png" in html for name in SHARED)
    table = pd.read_csv(path / "facts.csv")
    assert list(table["fact"]) == SHARED
    values = json.loads((path / "facts.json").read_text())
    assert values[0]["values"]["d1"] == pytest.approx(quick.findings[0].values["d1"])


@shared_runs
def test_the_figures_are_measured_not_fixed(quick):
    churn = next(f for f in quick.findings if f.name == "early_churn").values
    assert 0 < churn["d30"] < churn["d7"] < churn["d1"] < 1
    bass = next(f for f in quick.findings if f.name == "bass_s_curve").values
    assert bass["q_over_p"] == pytest.approx(bass["q"] / bass["p"])


@shared_runs
def test_a_promotion_dip_follows_the_bump_and_the_bump_has_three_sources(quick):
    dip = next(f for f in quick.findings if f.name == "post_promotion_dip").values
    assert dip["bump"] > 0.2 and dip["dip"] < 0 and dip["lull"] < 0
    assert 0 < dip["payback_share"] < 1
    parts = next(f for f in quick.findings if f.name == "promotion_bump_decomposition").values
    # the active users' bump has the three classical sources; lapsed users won back and newcomers add the rest
    assert parts["switching"] + parts["acceleration"] + parts["expansion"] == pytest.approx(parts["bump_active"])
    assert parts["bump_active"] + parts["won_back"] + parts["newcomers"] == pytest.approx(parts["bump"])
    assert parts["acceleration"] > 0 and parts["won_back"] > 0 and parts["newcomers"] > 0


def test_the_dip_fails_when_the_campaign_creates_enough_demand_to_fill_it():
    v = sim.validate(quick=True, facts=["post_promotion_dip"], overrides=["mechanisms.promotions.expansion=5"])
    assert not v.passed and v.findings[0].values["dip"] > -0.03, v.findings[0].figure


@shared_runs
def test_the_default_graph_is_heavy_tailed_clustered_and_small(quick):
    g = next(f for f in quick.findings if f.name == "social_graph_structure").values
    assert g["max_degree"] > 20 * g["mean_degree"] and 2 < g["tail_exponent"] < 3.5
    assert g["clustering"] > 50 * g["random_clustering"]
    assert g["mean_distance"] < g["random_distance"] * 1.25


def test_a_random_graph_fails_the_social_graph_fact():
    v = sim.validate(quick=True, facts=["social_graph_structure"], overrides=["graph=er"])
    assert not v.passed
    values = v.findings[0].values
    assert values["clustering"] < 10 * values["random_clustering"] and values["max_degree"] < 3 * values["mean_degree"]
    complete = sim.validate(quick=True, facts=["social_graph_structure"], overrides=["graph=complete"])
    assert not complete.passed and "well mixed" in complete.findings[0].figure


def test_recommenders_raise_orders_concentrate_sales_and_take_more_credit_than_they_earn():
    v = sim.validate(quick=True, facts=["recommendation_diversity", "recommendation_credit"])
    assert v.passed, [f.figure for f in v.findings]
    diversity, credit = (f.values for f in v.findings)
    gini = diversity["gini"]
    assert gini["personalised"] > gini["none"] > gini["random"]  # random spreads sales thinly
    for k in ("random", "popular", "personalised"):
        assert credit["credited"][k] > credit["added"][k]


def test_recommendations_no_longer_concentrate_sales_when_they_ignore_what_sells():
    """Metamorphic: with every recommendation replaced by a uniformly random category (exploration = 1),
    personalised and popular recommendations no longer follow sales, and the fact fails."""
    v = sim.validate(quick=True, facts=["recommendation_diversity"], overrides=["mechanisms.recommendations.exploration=1"])
    assert not v.passed, v.findings[0].figure
    values = v.findings[0].values
    assert values["gini"]["personalised"] < values["gini"]["none"]  # spread over the catalogue, not concentrated
    assert not values["checks"]["personalised vs none"] and not values["checks"]["popular vs none"]


@shared_runs
def test_referred_users_are_worth_more_than_everyone_else(quick):
    f = next(f for f in quick.findings if f.name == "referred_retention").values
    assert f["value_lift"] > 0.05
    assert f["value"]["referral"] > max(f["value"]["organic"], f["value"]["paid"])


def test_customers_drawn_in_by_a_deep_coupon_are_worth_less():
    v = sim.validate(quick=True, facts=["discount_acquired_value"])
    assert v.passed, v.findings[0].figure
    value = v.findings[0].values["value"]
    assert value["drawn in by the coupon"] < min(value["referred"], value["paid"])


def test_an_empty_promotion_calendar_changes_nothing():
    """What lets the default runs serve as the baseline of the promotion facts."""
    plain = sim.simulate(sim.compose("default", ["population.size=3000", "horizon=40"], seed=3)).daily
    empty = sim.simulate(sim.compose("default", ["population.size=3000", "horizon=40", "mechanisms.promotions.enabled=true",
                                                 "mechanisms.promotions.campaigns=[]"], seed=3)).daily
    pd.testing.assert_frame_equal(plain, empty[plain.columns])
    assert (empty.drop(columns=plain.columns).to_numpy() == 0).all()


def test_order_log_splits_every_order_by_join_day_and_category():
    model = GrowthModel(sim.compose("default", ["population.size=3000", "horizon=40"], seed=1))
    log = OrderLog(model)
    model.run()
    orders = model.metrics.daily(model.economics)["orders"].to_numpy()
    np.testing.assert_array_equal(log.by_join.sum(axis=1), orders)
    np.testing.assert_array_equal(log.by_category.sum(axis=1), orders)
    assert (np.triu(log.by_join, k=1) == 0).all()  # nobody orders before joining
    np.testing.assert_array_equal(log.orders_of_joined_before(41), orders)


def test_acquired_log_finds_the_customers_a_campaign_draws_in_and_changes_nothing():
    cfg = sim.compose("default", ["population.size=5000", "horizon=60", "mechanisms.promotions.enabled=true",
                                  "mechanisms.promotions.campaigns=[{kind:new_user,start:0,days:60,discount:0.4}]"], seed=2)
    plain = GrowthModel(cfg).run()
    model = GrowthModel(cfg)
    log = AcquiredLog(model, age=20)
    model.run()
    daily = model.metrics.daily(model.economics)
    pd.testing.assert_frame_equal(plain.metrics.daily(plain.economics), daily)
    assert log.drawn.sum() == daily["promotion_new_users"].sum() > 0
    old = model.pop.joined_day.copy()
    snapped = log.orders >= 0
    assert (snapped == ((old >= 0) & (old <= 59 - 20))).all()
    assert (log.orders[snapped] <= model.pop.orders[snapped]).all()


def test_larger_referral_rewards_bring_more_users_and_less_profit_per_user():
    v = sim.validate(quick=True, facts=["reward_tradeoff"])
    assert v.passed, v.findings[0].figure


def test_complex_contagion_spreads_further_on_clustered_graphs():
    v = sim.validate(quick=True, facts=["complex_contagion_clustering"])
    assert v.passed, v.findings[0].figure
    reach = v.findings[0].values["reach"]
    assert reach["clustered lattice"] > reach["random network"]


@pytest.mark.parametrize("seed", [1000, 2000])
def test_centola_direction_holds_for_other_seeds(seed):
    """Other seeds (other graphs and seed nodes): the lattices reach more people than the random
    networks, by more than 2 standard errors and within 15 points of the published 16 (the fact's
    band is 10 at full size)."""
    (finding,) = sim.validate(quick=True, facts=["complex_contagion_clustering"], seed=seed).findings
    values = finding.values
    assert values["difference"] > 2 * values["se"] and abs(values["difference"] - 0.16) < 0.15, finding.figure


def test_centola_fact_is_deterministic_for_a_seed():
    ctx = validation.Context(validation.QUICK, seed=3)
    settings = validation.centola_settings(98, "regular")
    first = ctx.adoption_curves("default", settings, 20)
    again = validation.Context(validation.QUICK, seed=3).adoption_curves("default", settings, 20)
    assert np.array_equal(first, again) and first[:, -1].std() > 0


def test_cli_exits_1_when_a_fact_fails(tmp_path):
    """Without same-sender fading (repeat_fade = 1) repeated invitations keep their force: a failure."""
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "validate", "--quick", "-q", "--fact", "invitation_saturation",
                           "behaviour.social.repeat_fade=1", f"--out={tmp_path}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "invitation_saturation" in proc.stdout and "FAIL" in proc.stdout
    report = Path(proc.stdout.strip().splitlines()[-1])
    assert report.name == "report.html" and report.is_file()


def test_cli_unknown_fact_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "validate", "--fact", "early_chrun", f"--out={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: fact 'early_chrun': no such fact (did you mean 'early_churn'?)")
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_invite_log_observes_without_changing_the_run():
    cfg = sim.compose("default", ["population.size=3000", "horizon=40"], seed=2)
    plain = GrowthModel(cfg).run()
    observed = GrowthModel(cfg)
    log = InviteLog(observed, REFERRAL)
    observed.run()
    pd.testing.assert_frame_equal(plain.metrics.daily(plain.economics), observed.metrics.daily(observed.economics))
    # every referral join is one observed winning invitation
    joins = int(np.count_nonzero(observed.pop.channel == REFERRAL))
    assert log.wins.sum() == joins > 0
    assert log.events.sum() > log.wins.sum()


def test_registry_is_the_single_list_of_facts():
    assert set(FACTS).isdisjoint(PENDING)
    assert len(FACTS) >= 12
    assert validation.FULL.replicates > validation.QUICK.replicates
