"""The user index (sorted ids of the people in states active ... dormant) kept by joins, reactivations
and churn: the compiled merge and removal equal a sort, searchsorted and ``np.insert`` / ``np.delete``."""

from __future__ import annotations

import numpy as np
import pytest

from sim import kernels
from sim.graph.csr import unique_sorted
from sim.population import State


def _numpy_add_users(users, idx, state, non_user):
    """Population.mark_users in numpy: sort, searchsorted and np.insert."""
    s = state[idx]
    new = unique_sorted(idx[(s < State.ACTIVE) | (s > State.DORMANT)])
    never = new[non_user[new]]
    non_user[never] = False
    return np.insert(users, np.searchsorted(users, new), new), never.size


def _numpy_drop_users(users, idx, state):
    s = state[idx]
    gone = unique_sorted(idx[(s >= State.ACTIVE) & (s <= State.DORMANT)])
    return np.delete(users, np.searchsorted(users, gone))


@pytest.mark.parametrize("seed", range(6))
def test_user_index_kernels_equal_numpy(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    state = rng.integers(State.POTENTIAL, State.CHURNED + 1, n).astype(np.int8)
    users = np.flatnonzero((state >= State.ACTIVE) & (state <= State.DORMANT)).astype(np.int64)
    non_user = state <= State.AWARE
    idx = rng.integers(0, n, int(rng.integers(0, 2 * n))).astype(np.int64)  # repeats, any order
    seen = np.zeros(n, dtype=bool)

    expect_users, expect_never = _numpy_add_users(users, idx, state, non_user.copy())
    got_non_user = non_user.copy()
    got_users, got_never = kernels.add_users(users, idx, state, State.ACTIVE, State.DORMANT, got_non_user, seen)
    np.testing.assert_array_equal(got_users, expect_users)
    assert got_never == expect_never
    assert np.count_nonzero(got_non_user) == np.count_nonzero(non_user) - expect_never
    assert not seen.any()

    np.testing.assert_array_equal(kernels.drop_users(users, idx, state, State.ACTIVE, State.DORMANT, seen),
                                  _numpy_drop_users(users, idx, state))
    assert not seen.any()
