"""The Pinduoduo-like preset: a calendar from launch, a market that grows as CNNIC counted online
shoppers, and the calibration experiment that fits the shape of the company's reported figures."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest

import sim
from sim.analysis.calibration import check_targets, load_target
from sim.analysis.sensitivity import base_config
from sim.analysis.targets import weighted_loss
from sim.experiment import check_space
from sim.plans import experiment_spec, load_experiment
from sim.schema import ConfigError

LAUNCH = date(2015, 9, 1)
YEAR_ENDS = [(date(year, 12, 31) - LAUNCH).days for year in range(2017, 2022)]
#: CNNIC's online shoppers at year ends (millions): the market's growth is this, not a fitted curve
CNNIC = {date(2015, 12, 31): 413.25, date(2016, 12, 31): 466.70, date(2017, 12, 31): 533.32, date(2018, 12, 31): 610.11,
         date(2020, 3, 31): 710.32, date(2020, 12, 31): 782.41, date(2021, 12, 31): 841.73}


def test_the_preset_runs_from_launch_to_the_end_of_2021_on_cnnic_s_market():
    cfg = sim.compose("pinduoduo")
    assert cfg.horizon == (date(2021, 12, 31) - LAUNCH).days + 1
    curve = {p.day: p.share for p in cfg.population.entry}
    for when, millions in CNNIC.items():
        assert curve[(when - LAUNCH).days] == pytest.approx(millions / 841.73, abs=6e-4), when
    assert cfg.mechanisms["group_buy"].enabled and cfg.mechanisms["group_buy"].team_size == 2


@pytest.mark.slow
def test_the_preset_grows_its_buyers_and_their_spend_year_after_year():
    d = sim.run("pinduoduo", ["population.size=4000"], seed=1).daily
    buyers = d["active_buyers_365"].iloc[YEAR_ENDS].to_numpy()
    spend = (d["gmv_365"].iloc[YEAR_ENDS] / d["active_buyers_365"].iloc[YEAR_ENDS]).to_numpy()
    assert buyers[-1] > 1.5 * buyers[0]
    assert np.all(np.diff(spend) > 0) and spend[-1] > 2.5 * spend[0]
    assert d["market_size"].iloc[0] == pytest.approx(0.4705 * 4000, rel=0.1) and d["market_size"].iloc[-1] == 4000


def test_the_experiment_fits_shapes_at_the_year_ends_and_holds_gmv_out():
    _, spec = load_experiment("pinduoduo")
    base = base_config(spec, spec.calibration.scenario)
    check_space(base, spec.calibration.params, "calibration")
    targets = [load_target(t, f"calibration.targets[{k}]") for k, t in enumerate(spec.calibration.targets)]
    check_targets(targets, base, "calibration")
    assert all(t.at.tolist() == YEAR_ENDS and t.relative_to == 2313 for t in targets)
    assert [t.weight for t in targets] == [1.0, 1.0, 0.0]  # annual GMV: held out, judged not fitted


def test_a_held_out_target_never_counts_in_the_loss():
    _, spec = load_experiment("pinduoduo")
    targets = [load_target(t, f"t{k}") for k, t in enumerate(spec.calibration.targets)]
    assert weighted_loss(np.array([0.1, 0.3, np.inf]), targets) == pytest.approx(0.2)


def test_an_experiment_with_only_held_out_targets_is_refused():
    data = {"seed": 0, "calibration": {"params": {"adoption.word_of_mouth_conversion": [0.01, 0.2]},
                                       "targets": [{"metric": "dau", "values": {5: 10}, "weight": 0}]}}
    with pytest.raises(ConfigError, match="at least one target needs a weight above 0"):
        experiment_spec(data, "x.yaml")


def test_the_documented_calibrated_values_are_the_preset_s():
    """docs/pinduoduo.md's table gives every calibrated setting of the experiment, the value the preset
    runs with, close to the fitted one (rounded to two significant figures or better)."""
    from sim.plans import PROJECT
    from sim.schema import to_plain

    rows = re.findall(r"^\| `([\w.]+)`[^|]*\| ([\d.]+) \| ([\d.]+) \|", (PROJECT / "docs" / "pinduoduo.md").read_text(), re.M)
    table = {key: (float(fitted), float(preset)) for key, fitted, preset in rows}
    _, spec = load_experiment("pinduoduo")
    assert set(table) == set(spec.calibration.params)
    cfg = to_plain(sim.compose("pinduoduo"))
    for key, (fitted, preset) in table.items():
        value = cfg
        for part in key.split("."):
            value = value[part]
        assert value == preset, key
        assert preset == pytest.approx(fitted, rel=0.05), key
