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
