"""The recorder (sim.metrics): how it stores what it records."""

from __future__ import annotations

import numpy as np


def test_cohort_cells_read_by_join_day():
    """The recorder stores cohort cells by the day they describe; its (join day, channel, age) views
    read back what was written at (join day + age, ages - 1 - age, channel), and nothing else."""
    from sim.metrics import _by_join_day
    H, ages, C = 9, 5, 3
    rng = np.random.default_rng(0)
    cells = np.zeros((H + ages, ages, C))
    expect = np.zeros((H, C, ages))
    for c in range(H):
        for a in range(ages):
            if c + a < H:
                v = rng.random(C)
                cells[c + a, ages - 1 - a] = v
                expect[c, :, a] = v
    view = _by_join_day(cells, H)
    np.testing.assert_array_equal(view, expect)
    assert not view.flags.writeable


def test_trailing_buyers_are_the_distinct_buyers_of_their_window():
    """``active_buyers_30`` and ``active_buyers_365`` count the people who ordered at least once in
    the window ending that day (as platforms report "annual active buyers"); ``gmv_365`` sums the
    window's GMV."""
    import sim

    model = sim.GrowthModel(sim.compose("all_mechanisms", ["population.size=2000", "horizon=420"], seed=4))
    buyers_by_day = []
    for _ in range(420):
        model.step()
        buyers_by_day.append(set(model.today.buyers.tolist()))
    daily = model.metrics.daily(model.economics)
    for window in (30, 365):
        want = [len(set().union(*buyers_by_day[max(0, d - window + 1): d + 1])) for d in range(420)]
        assert daily[f"active_buyers_{window}"].tolist() == want
    gmv = daily["gmv"].to_numpy()
    want_gmv = [gmv[max(0, d - 364): d + 1].sum() for d in range(420)]
    np.testing.assert_allclose(daily["gmv_365"], want_gmv, rtol=1e-12)
    assert (daily["active_buyers_30"] <= daily["active_buyers_365"]).all() and daily["active_buyers_30"].iloc[-1] > 0
