"""Research outputs that do not mislead (issue 20): sensitivity indices with what they measure,
bounded intervals, a normalised view and the seed noise; curve summaries without the day-0 seeding
artefact; classic diffusion runs reported as adoption; graph families that differ; sweeps and
comparisons that say how many replicates a difference needs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.analysis.sensitivity import analyse, elementary_effects, morris_step, mu_star_interval, noise_floor, problem, sample
from sim.config import effective_overrides
from sim.plans import ParameterRange

BUDGET = "mechanisms.paid_acquisition.budget_per_1000"
UNUSED = "mechanisms.group_buy.discount"  # group buying is off in the default scenario
CHURN = "behaviour.churn.base_hazard"


# ------------------------------------------------------------------------------ sensitivity
def unit_problem(k: int = 3) -> dict:
    return problem({f"p{i}": ParameterRange(0, 10) for i in range(k)})


def test_a_morris_step_moves_two_thirds_of_the_range_with_four_levels():
    """SALib's delta = levels / (2 (levels - 1)): the design moves a parameter 2/3 of its range, not a quarter."""
    assert morris_step(4) == pytest.approx(2 / 3)
    assert morris_step(6) == pytest.approx(3 / 5)
    prob = unit_problem()
    x = sample("morris", prob, 10, levels=4, seed=0).reshape(10, 4, 3)
    steps = np.abs(np.diff(x, axis=1)).max(axis=2)
    assert np.allclose(steps, 10 * 2 / 3)


def test_mu_star_of_a_linear_metric_is_its_change_across_the_whole_range():
    """y = 3 p0 - 2 p1 on [0, 10]: mu* = 30 and 20 (the change from low to high), p2 unused."""
    prob = unit_problem()
    x = sample("morris", prob, 8, seed=1)
    t = analyse("morris", prob, x, 3 * x[:, 0] - 2 * x[:, 1], seed=1).set_index("parameter")
    assert t.loc["p0", "mu_star"] == pytest.approx(30) and t.loc["p1", "mu_star"] == pytest.approx(20)
    assert t.loc["p1", "mu"] == pytest.approx(-20) and t.loc["p2", "mu_star"] == 0


def test_elementary_effects_are_the_ones_salib_summarises():
    from SALib.analyze import morris

    prob = unit_problem(4)
    x = sample("morris", prob, 12, seed=2)
    y = np.sin(x[:, 0]) * x[:, 1] + x[:, 2] ** 2
    effects = elementary_effects(prob, x, y)
    ref = morris.analyze(prob, x, y, num_levels=4, seed=2)
    assert np.allclose(np.abs(effects).mean(axis=1), ref["mu_star"])
    assert np.allclose(effects.mean(axis=1), ref["mu"])
    assert np.allclose(effects.std(axis=1, ddof=1), ref["sigma"])


def test_the_interval_of_mu_star_never_goes_below_zero():
    """One large effect among small ones: SALib's normal half-width reaches below zero, the
    percentile bootstrap cannot; the point estimate lies inside, and the seed fixes the interval."""
    from SALib.analyze import morris

    effects = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 12.0], [1.0, -1.0, 2.0, -2.0, 1.5, -0.5]])
    low, high = mu_star_interval(effects, 2000, seed=5)
    mu_star = np.abs(effects).mean(axis=1)
    assert (low >= 0).all() and (low <= mu_star).all() and (mu_star <= high).all()
    assert np.array_equal(low, mu_star_interval(effects, 2000, seed=5)[0])
    prob = unit_problem()
    x = sample("morris", prob, 6, seed=3)
    y = np.where(np.arange(len(x)) == 5, 100.0, 0.0)  # one spike: a heavy-tailed set of effects
    ref = morris.analyze(prob, x, y, num_levels=4, seed=3)
    t = analyse("morris", prob, x, y, seed=3)
    assert (ref["mu_star"] - ref["mu_star_conf"] < 0).any()  # today's interval went below zero
    assert (t["mu_star_low"] >= 0).all() and (t["mu_star_low"] <= t["mu_star"]).all() and (t["mu_star"] <= t["mu_star_high"]).all()


def test_mu_star_per_sd_does_not_depend_on_the_metric_unit():
    prob = unit_problem()
    x = sample("morris", prob, 8, seed=4)
    y = x[:, 0] ** 2 + x[:, 1]
    people, thousands = analyse("morris", prob, x, y, seed=4), analyse("morris", prob, x, 1000 * y, seed=4)
    assert np.allclose(thousands["mu_star"], 1000 * people["mu_star"])
    assert np.allclose(thousands["mu_star_per_sd"], people["mu_star_per_sd"])
    assert np.allclose(people["mu_star_per_sd"], people["mu_star"] / np.std(y, ddof=1))


@pytest.mark.parametrize("replicates", [1, 4])
def test_the_morris_noise_floor_is_the_mu_star_of_pure_noise(replicates):
    """A metric that is nothing but seed noise (sd 5 per run, the mean of `replicates` runs per
    point) gives every parameter a mu* near the floor: within 10 % over 400 trajectories."""
    prob = unit_problem(4)
    x = sample("morris", prob, 400, seed=6)
    y = np.random.default_rng(7).normal(0, 5, (len(x), replicates)).mean(axis=1)
    t = analyse("morris", prob, x, y, seed=6)
    assert t["mu_star"].mean() == pytest.approx(noise_floor("morris", 5.0, replicates, 4, y), rel=0.1)


def test_the_sobol_noise_floor_is_the_total_index_of_pure_noise():
    prob = unit_problem(2)
    x = sample("sobol", prob, 1024, seed=8)
    y = np.random.default_rng(9).normal(0, 2, len(x)) + 0.3 * x[:, 0]
    t = analyse("sobol", prob, x, y, resamples=100, seed=8).set_index("parameter")
    assert t.loc["p1", "ST"] == pytest.approx(noise_floor("sobol", 2.0, 1, 4, y), rel=0.15)


def test_an_override_given_twice_is_listed_once_with_the_value_that_counts():
    assert effective_overrides(["population.size=10000", "horizon=120", "population.size=5000"]) == ["population.size=5000", "horizon=120"]
    assert effective_overrides(["+a.b=1", "a.b=2", "c=3"]) == ["a.b=2", "c=3"]


@pytest.fixture(scope="module")
def screening(tmp_path_factory):
    """A small Morris screening from the command line, its population given twice (file, then command line)."""
    from sim.cli import main

    tmp = tmp_path_factory.mktemp("screening")
    data = {"description": "issue 20", "seed": 3, "overrides": ["population.size=3000", "horizon=30"],
            "sensitivity": {"scenario": "default", "metrics": ["users_total", "profit"], "samples": 4, "noise_seeds": 4,
                            "params": {BUDGET: [0, 20], UNUSED: [0.1, 0.6], CHURN: [0.3, 0.6]}}}
    path = tmp / "screening.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["sensitivity", f"experiment={path}", "population.size=1500", "workers=1", f"out={tmp / 'out'}", "-q"]) == 0
    folder = next((tmp / "out").iterdir())
    return folder, (folder / "report.html").read_text()


def test_the_report_says_what_a_morris_step_is_and_that_rankings_depend_on_ranges(screening):
    _, page = screening
    assert "a quarter of it" not in page and "per step" not in page
    assert "moves one parameter by 2/3 of its range" in page and "whole range" in page
    assert "The ranking depends on the ranges." in page
    assert "mu* / sd" in page


def test_the_report_lists_each_override_once_with_the_value_used(screening):
    folder, page = screening
    assert "population.size=1500 horizon=30" in page and "population.size=3000" not in page
    assert yaml.safe_load((folder / "config.yaml").read_text())["population"]["size"] == 1500


def test_the_centre_of_the_ranges_is_run_at_several_seeds_for_the_noise_floor(screening):
    folder, page = screening
    noise = pd.read_parquet(folder / "noise.parquet")
    assert len(noise) == 4 and noise["seed"].nunique() == 4
    js = json.loads((folder / "indices.json").read_text())
    assert js["noise"]["users_total"]["seeds"] == 4 and js["noise"]["users_total"]["sd"] > 0
    indices = pd.read_parquet(folder / "indices.parquet").set_index(["metric", "parameter"])
    floor = indices.loc[("users_total", UNUSED), "noise_floor"]
    assert floor == pytest.approx(noise_floor("morris", js["noise"]["users_total"]["sd"], 1, 4, np.zeros(2)))
    assert (indices["mu_star_low"] >= 0).all()
    block = page[page.index("<h3>users acquired "):page.index("<h3>profit ")]
    unused = next(r for r in block.split("<tr>") if UNUSED in r)
    assert "not distinguishable from noise" in unused and "Seed noise at the centre of the ranges: 4 runs" in block
    budget = next(r for r in block.split("<tr>") if BUDGET in r)
    assert "x the noise" in budget
    assert (folder / "plots" / "morris_per_sd.png").is_file()


def _drawn_labels(monkeypatch, indices: pd.DataFrame) -> list:
    """The parameter names the Morris plot draws, as window extents."""
    from sim import plots

    captured = {}

    def keep(fig, path, bottom=0.0):
        fig.canvas.draw()
        captured["fig"] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    plots.sensitivity_plot(indices, "morris", "unused.png", "label")
    fig = captured["fig"]
    renderer = fig.canvas.get_renderer()
    names = set(indices["parameter"].map(plots._param_label))
    texts = [t for ax in fig.axes for t in [*ax.texts, *ax.get_yticklabels()] if t.get_text() in names]
    return [t.get_window_extent(renderer) for t in texts]


def test_parameter_names_in_the_morris_plot_never_overlap(monkeypatch):
    """Five parameters crowded near the origin (today's labels were drawn on top of each other)."""
    params = [BUDGET, UNUSED, CHURN, "behaviour.purchase.conversion", "adoption.word_of_mouth_conversion"]
    mu = np.array([1000.0, 3.0, 2.0, 1.0, 0.0])
    indices = pd.DataFrame({"metric": "users_total", "parameter": params, "rank": [1, 2, 3, 4, 5], "mu_star": mu,
                            "mu_star_low": mu * 0.8, "mu_star_high": mu * 1.2, "mu": mu, "sigma": mu / 2,
                            "mu_star_per_sd": mu / 100, "noise_floor": 5.0})
    boxes = _drawn_labels(monkeypatch, indices)
    assert len(boxes) == len(params)
    overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    assert not overlaps


# ------------------------------------------------------------------------------ curve summaries
def test_the_peak_of_new_users_ignores_the_day_0_seed_users():
    """Without referral rewards the seeds (2 % of the market on day 0) outnumber every later day:
    the peak is the busiest 7-day mean from day 1 on, never day 0."""
    cfg = sim.compose("default", ["population.size=3000", "horizon=60", "adoption.seed_fraction=0.02",
                                  "mechanisms.referral.enabled=false"], seed=1)
    r = sim.simulate(cfg)
    new = r.daily["new_users"]
    assert new.iloc[0] > new.iloc[1:].max()  # the artefact's condition
    later = new.iloc[1:].rolling(7, min_periods=1).mean()
    assert r.summary["peak_new_users_day"] == int(later.idxmax()) >= 1


def test_more_seed_users_do_not_move_the_peak_to_day_0():
    peaks = [sim.simulate(sim.compose("ic", ["population.size=3000", "horizon=40", f"diffusion.seed_fraction={f}"], seed=2)).summary["peak_new_users_day"]
             for f in (0.01, 0.2)]
    assert min(peaks) >= 1


# ------------------------------------------------------------------------------ classic diffusion runs
@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    from sim.runs import write_run_folder

    result = sim.simulate(sim.compose("ic", ["population.size=3000", "horizon=30"], seed=0))
    return result, write_run_folder(result, tmp_path_factory.mktemp("ic"))


def test_a_diffusion_run_line_counts_adopters_not_money(cascade):
    from sim.cli import run_line

    result, _ = cascade
    line = run_line(result.config, result.summary)
    assert f"{result.summary['users_total']:,} adopters" in line and "RMB" not in line and "GMV" not in line
    default = sim.simulate(sim.compose("default", ["population.size=1000", "horizon=10"]))
    assert "GMV" in run_line(default.config, default.summary)


def test_a_diffusion_run_report_shows_adoption_only(cascade):
    result, folder = cascade
    assert result.summary["gmv"] > 0  # its people do buy: the report leaves it out
    page = (folder / "report.html").read_text()
    assert sorted(p.name for p in (folder / "plots").iterdir()) == ["growth.png"]
    for money in ("GMV", "RMB", "profit", "P&amp;L", "CAC", "LTV", "money.png"):
        assert money not in page, money
    assert "adopters" in page and "adopted share of the graph" in page


# ------------------------------------------------------------------------------ graph families
def _graph(kind: str, size: int, *overrides: str):
    from sim.graph import build_graph

    cfg = sim.compose("default", [f"population.size={size}", f"graph={kind}", *overrides])
    return build_graph(cfg.graph, size, np.random.default_rng(1))


def test_a_block_model_community_means_the_same_at_any_market_size():
    """Communities of about 100 people at 10,000 and at 40,000 people (a count of communities made
    them four times larger, and the graph four times less clustered, in the larger market)."""
    clustering = {}
    for size in (10_000, 40_000):
        g = _graph("sbm", size)
        assert np.bincount(g.community).mean() == pytest.approx(100, rel=0.02)
        u, v = g.edges()
        assert np.mean(g.community[u] == g.community[v]) == pytest.approx(0.8, abs=0.01)
        clustering[size] = g.clustering_sample(np.random.default_rng(2))
    assert clustering[40_000] == pytest.approx(clustering[10_000], rel=0.15)
    assert clustering[40_000] > 20 * _graph("er", 40_000).clustering_sample(np.random.default_rng(2))


def test_the_old_count_of_communities_is_refused_with_its_replacement():
    from sim.schema import ConfigError

    with pytest.raises(ConfigError, match="renamed to graph.community_size, people per community"):
        sim.compose("default", ["graph=sbm", "graph.communities=100"])


# ------------------------------------------------------------------------------ how many replicates
def test_the_replicates_a_difference_needs_give_it_eighty_percent_power():
    """Simulated two-sample t tests at the n the formula gives reject about 80 % of the time."""
    from scipy import stats

    from sim.analysis.power import replicates_for

    n = replicates_for(sd=10.0, difference=5.0)
    assert n == math.ceil(2 * (1.959964 + 0.841621) ** 2 * 4)  # 63
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 10, (4000, n)), rng.normal(5, 10, (4000, n))
    power = np.mean(stats.ttest_ind(a, b, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.03)
    assert replicates_for(10.0, 5.0, paired=True) == math.ceil(n / 2)
    assert replicates_for(float("nan"), 5.0) is None and replicates_for(1.0, 0.0) is None


def test_seeds_to_halve_a_band_halve_its_t_interval():
    from sim.analysis.power import half_width, replicates_to_halve

    for n in (3, 5, 10, 30):
        m = replicates_to_halve(n)
        assert half_width(1.0, m) <= half_width(1.0, n) / 2 < half_width(1.0, m - 1)
    assert replicates_to_halve(30) in range(110, 121)  # about 4 n


def _sweep(seeds: int, sd: float):
    """A sweep's runs without simulating: two graph kinds x `seeds` seeds, users acquired 1,000 and
    1,050 plus noise of standard deviation `sd`."""
    from sim.experiment import Sweep

    rng = np.random.default_rng(1)
    rows = [{"graph": g, "seed": s, "run": f"{g}-{s}", "users_total": base + rng.normal(0, sd), "profit": -10.0 * base}
            for g, base in (("er", 1000.0), ("sbm", 1050.0)) for s in range(seeds)]
    return Sweep(Path("sweep"), ["graph", "seed"], pd.DataFrame(), pd.DataFrame(rows), ["users_total", "profit"])


def test_the_sweep_report_says_how_many_seeds_its_spread_needs():
    from sim.analysis.power import replicates_for
    from sim.report import sweep_report

    s = _sweep(3, 100.0)
    page = sweep_report(s, {})
    assert "How many seeds the bands need" in page
    sd = np.sqrt(s.horizon.groupby("graph")["users_total"].var().mean())
    needed = replicates_for(sd, 0.05 * s.horizon["users_total"].mean())
    row = next(r for r in page.split("<tr>") if r.startswith("<td>users acquired"))
    assert f"<b>{needed:,}</b>" in row  # more than the 3 seeds run: in bold
    quiet = sweep_report(_sweep(3, 1.0), {})
    row = next(r for r in quiet.split("<tr>") if r.startswith("<td>users acquired"))
    assert "<b>" not in row  # a spread of 1 person resolves 5 % of 1,000 with 2 seeds
    assert "One run per combination" in sweep_report(_sweep(1, 100.0), {})


def test_a_sweep_of_diffusion_runs_reports_adopters_not_money(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", "-m", "scenario=ic", "graph=er,sbm", "population.size=1000",
                           "horizon=15", f"hydra.sweep.dir={folder}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    from sim.experiment import load_sweep

    assert load_sweep(folder).metrics == ["users_total"]
    page = (folder / "report.html").read_text()
    assert "users acquired" in page and "GMV" not in page and "profit" not in page


def test_a_comparison_of_diffusion_runs_reports_adopters_not_money(tmp_path):
    c = sim.compare(["ic", "lt"], replicates=2, overrides=["population.size=1000", "horizon=15"], out=tmp_path, workers=1)
    assert list(c.spec.metrics) == ["users_total", "users_end"] and set(c.table["metric"]) == {"users_total", "users_end"}
    page = (c.path / "report.html").read_text()
    assert "GMV" not in page and "profit" not in page and "RMB" not in page
    assert sorted(p.name for p in (c.path / "plots").iterdir()) == ["curves.png", "differences.png", "horizon.png"]


def test_the_comparison_report_says_how_many_replicates_a_difference_needs(tmp_path):
    """The replicates a 5 % difference needs, from the spread of the paired differences: n =
    (z.975 + z.8)^2 sd^2 / (0.05 |baseline mean|)^2, in bold where the comparison ran fewer."""
    from statistics import NormalDist

    c = sim.compare(["default", "referral_double"], replicates=3, overrides=["population.size=1500", "horizon=30"],
                    metrics=["users_total", "profit"], out=tmp_path, workers=1)
    h = c.horizon.set_index(["strategy", "replicate"])
    d = h.loc["referral_double", "users_total"] - h.loc["default", "users_total"]
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    needed = max(2, math.ceil((z * d.std(ddof=1) / (0.05 * h.loc["default", "users_total"].mean())) ** 2))
    page = (c.path / "report.html").read_text()
    section = page[page.index("How many replicates a difference needs"):]
    row = next(r for r in section.split("<tr>") if r.startswith("<td>users acquired"))
    assert (f"<b>{needed:,}</b>" if needed > 3 else f"<td>{needed:,}</td>") in row


def test_a_metric_no_run_has_a_value_gives_no_replicate_count_and_no_warning():
    import warnings

    from sim.analysis.power import paired_table, seed_table

    horizon = pd.DataFrame({"strategy": ["a", "a", "b", "b"], "replicate": [0, 1, 0, 1], "ltv_180": [np.nan] * 4, "users_total": [10.0, 12, 11, 15]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = paired_table(horizon, "a", ["ltv_180", "users_total"]).set_index("metric")
        s = seed_table(horizon, ["strategy"], ["ltv_180"])
    assert pd.isna(t.loc["ltv_180", "needed"]) and t.loc["users_total", "needed"] >= 2
    assert pd.isna(s["needed"].iloc[0])
