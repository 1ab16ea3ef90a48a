"""Simple and complex contagion: who a friend's invitation, mention or joining notice can convert.

Complex contagion counts the friends who have ever joined (``Population.adopted_friends``), as
Centola (2010) counted adopting neighbours: a friend's adoption, once seen, stays seen, whether or not
that friend ever wrote and whether or not they stayed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine import GrowthModel

#: nothing spreads the platform but the joining notices (no ads, outside adoption, referrals or word of mouth)
SILENT = ["adoption.external_rate=0", "mechanisms.paid_acquisition.enabled=false", "mechanisms.referral.enabled=false",
          *[f"population.segments.{name}.share_rate=0" for name in sim.compose("default").population.segments]]


def run(settings, seed=0) -> GrowthModel:
    return GrowthModel(sim.compose("default", settings, seed=seed)).run()


def daily(model: GrowthModel) -> pd.DataFrame:
    return model.metrics.daily(model.economics)


@pytest.mark.parametrize("seed", range(3))
def test_complex_contagion_spreads_through_friends_on_a_clustered_graph_without_ads(seed):
    """Issue 21's symptom: with threshold 2 on a small world and no ads, under 0.5 % of people joined
    through friends, because the threshold counted friends who had written rather than friends who
    had joined (most adopters lapse within days, having invited few). It now spreads: over 2 % in
    half a year from 1 % of people as seeds (about 2.5-3 % under the engagement magnitudes of issue 21:
    adopters who visit rarely invite rarely)."""
    model = run(["population.size=5000", "horizon=180", "graph=ws", "adoption.contagion=complex", "adoption.threshold=2",
                 "adoption.seed_fraction=0.01", "mechanisms.paid_acquisition.enabled=false"], seed)
    assert daily(model)["new_referral"].sum() > 0.02 * 5000


def test_adopted_friends_counts_every_friend_who_ever_joined():
    model = run(["population.size=3000", "horizon=120", "graph=ws", "adoption.contagion=complex"], seed=4)
    pop = model.pop
    assert (pop.churn_day >= 0).any()  # some friends left: they still count
    assert np.array_equal(pop.adopted_friends, model.graph.neighbour_sum((pop.joined_day >= 0).astype(np.int64)).astype(np.int32))


def test_complex_contagion_with_threshold_one_is_simple_contagion():
    """Every social exposure comes from a friend who joined, so a threshold of one friend blocks nothing."""
    base = ["population.size=3000", "horizon=90", "graph=ws"]
    simple = run([*base, "adoption.contagion=simple"], seed=1)
    complex_one = run([*base, "adoption.contagion=complex", "adoption.threshold=1"], seed=1)
    pd.testing.assert_frame_equal(daily(simple), daily(complex_one))


def test_simple_contagion_ignores_the_complex_contagion_settings():
    base = ["population.size=3000", "horizon=90"]
    plain = run(base, seed=2)
    other = run([*base, "adoption.threshold=7", "adoption.below_threshold=0.5"], seed=2)
    pd.testing.assert_frame_equal(daily(plain), daily(other))


def test_a_seed_neighbourhood_is_a_person_and_all_their_friends():
    model = run(["population.size=144", "horizon=1", "graph=lattice", "adoption.seeding=neighbourhood", "adoption.seed_fraction=0.007",
                 *SILENT])
    joined = np.flatnonzero(model.pop.joined_day == 0)
    assert joined.size == 7
    degree_inside = np.array([np.isin(model.graph.neighbours(i), joined).sum() for i in joined])
    assert sorted(degree_inside.tolist()) == [3, 3, 3, 3, 3, 3, 6]  # the centre and its hexagon of friends


@pytest.mark.parametrize("graph", ["lattice", "regular"])
def test_certain_joining_notices_reach_everyone_connected_one_ring_a_day(graph):
    """A notice that always converts is a breadth-first search: on day t the people t steps away join."""
    import networkx as nx

    model = run(["population.size=144", "horizon=20", f"graph={graph}", "adoption.join_notice=1", "adoption.seed_fraction=0.007", *SILENT])
    seed = int(np.flatnonzero(model.pop.joined_day == 0)[0])
    steps = nx.single_source_shortest_path_length(model.graph.to_networkx(), seed)
    assert all(model.pop.joined_day[node] == d for node, d in steps.items())


@pytest.mark.parametrize("below, everyone", [(0.0, False), (1.0, True)])
def test_the_response_below_the_threshold_decides_whether_one_seed_can_start_a_spread(below, everyone):
    """One seed on a lattice, certain notices, threshold 2: under a strict threshold nobody has two
    adopting friends, so no one joins; with full response below it everyone does."""
    model = run(["population.size=144", "horizon=20", "graph=lattice", "adoption.join_notice=1", "adoption.seed_fraction=0.007",
                 "adoption.contagion=complex", "adoption.threshold=2", f"adoption.below_threshold={below}", *SILENT])
    assert int((model.pop.joined_day >= 0).sum()) == (144 if everyone else 1)
