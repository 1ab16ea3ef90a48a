"""The stylized-fact validation suite (``sim validate``, ``sim.validate``), at its quick size.

The full suite (``sim validate``) runs the same facts on larger runs with three replicates; here the
facts are checked on one replicate of small runs, which is enough for each to pass with a margin
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
from sim.analysis.validation import FACTS, PENDING, REFERRAL, InviteLog
from sim.engine import GrowthModel

SHARED = ["early_churn", "bass_s_curve", "invitation_saturation", "referred_retention"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The facts that share the default-scenario runs, plus the pending list, written to a folder."""
    out = tmp_path_factory.mktemp("validation")
    return sim.validate(quick=True, facts=[*SHARED, *PENDING], out=out)


@pytest.mark.parametrize("name", SHARED)
def test_default_settings_reproduce_the_fact(quick, name):
    finding = next(f for f in quick.findings if f.name == name)
    assert finding.status == "pass", f"{name}: {finding.figure}"


def test_every_finding_states_measure_figure_reference_and_criterion(quick):
    for f in quick.findings:
        assert f.reference and f.figure and f.title
        if f.status != "pending":
            assert f.measured and f.criterion and f.plot is not None


def test_pending_facts_are_reported_but_do_not_fail_the_suite(quick):
    pending = [f for f in quick.findings if f.status == "pending"]
    assert {f.name for f in pending} == set(PENDING)
    assert quick.passed


def test_validation_folder_holds_report_table_and_a_plot_per_fact(quick):
    path = quick.path
    assert path.is_dir() and not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    plots = {p.stem for p in (path / "plots").glob("*.png")}
    assert plots == set(SHARED)
    html = (path / "report.html").read_text()
    assert all(f"plots/{name}.png" in html for name in SHARED)
    table = pd.read_csv(path / "facts.csv")
    assert list(table["fact"]) == [*SHARED, *PENDING]
    values = json.loads((path / "facts.json").read_text())
    assert values[0]["values"]["d1"] == pytest.approx(quick.findings[0].values["d1"])


def test_the_figures_are_measured_not_fixed(quick):
    churn = next(f for f in quick.findings if f.name == "early_churn").values
    assert 0 < churn["d30"] < churn["d7"] < churn["d1"] < 1
    bass = next(f for f in quick.findings if f.name == "bass_s_curve").values
    assert bass["q_over_p"] == pytest.approx(bass["q"] / bass["p"])


def test_larger_referral_rewards_bring_more_users_and_less_profit_per_user():
    v = sim.validate(quick=True, facts=["reward_tradeoff"])
    assert v.passed, v.findings[0].figure


def test_complex_contagion_spreads_further_on_clustered_graphs():
    v = sim.validate(quick=True, facts=["complex_contagion_clustering"])
    assert v.passed, v.findings[0].figure
    reach = v.findings[0].values["reach"]
    assert reach["holme_kim"] > reach["er"] and reach["ws lattice (rewire 0.02)"] > reach["ws rewired (rewire 1)"]


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
    assert len(FACTS) >= 6
