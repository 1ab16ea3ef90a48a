"""Generated graphs kept between runs (sim.graph.store): what is read back is the graph generated,
bit for bit, and so is every run on it; anything that changes the graph's inputs generates anew;
and the store never makes a run fail."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import small
from sim.engine import GrowthModel
from sim.graph import store


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A store of its own, keeping graphs of the tests' small markets too."""
    monkeypatch.setenv("SIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "MIN_PEOPLE", 1000)
    return tmp_path / "cache" / "graphs"


def _files(folder) -> list:
    return sorted(folder.glob("*.npz")) if folder.exists() else []


def _daily(model):
    return model.metrics.daily(model.economics)


def _generating_fails(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("generated, not read back")

    monkeypatch.setattr("sim.engine.build_graph", refuse)


@pytest.mark.parametrize("graph", ["graph=holme_kim", "graph=sbm", "graph=er"])
def test_a_kept_graph_is_read_back_bit_for_bit_and_so_is_the_run(kept, monkeypatch, graph):
    cfg = small(graph)
    generated = GrowthModel.make_graph(cfg)
    assert len(_files(kept)) == 1
    first = _daily(GrowthModel(cfg, graph=generated).run())
    with monkeypatch.context() as m:
        _generating_fails(m)
        read = GrowthModel.make_graph(cfg)
        again = _daily(GrowthModel(cfg).run())
    for name in ("indptr", "indices", "degree"):
        a, b = getattr(generated, name), getattr(read, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert (generated.community is None) == (read.community is None)
    if generated.community is not None:
        assert np.array_equal(generated.community, read.community)
    assert first.equals(again)


def test_the_key_follows_every_input_of_the_graph(monkeypatch):
    monkeypatch.setattr(store, "MIN_PEOPLE", 1000)
    base = small()

    def name(*overrides, seed=0):
        cfg = small(*overrides, seed=seed)
        return store.key(cfg.graph, cfg.population.size, cfg.seed if cfg.world_seed is None else cfg.world_seed)

    assert name() == store.key(base.graph, base.population.size, base.seed) is not None
    different = {name(seed=1), name("population.size=3001"), name("graph.avg_degree=12"), name("graph.triangle_prob=0.3"),
                 name("graph=er"), name("world_seed=5")}
    assert len(different) == 6 and name() not in different
    assert name("world_seed=5", seed=1) == name("world_seed=5", seed=2)  # a fixed world: one graph whatever the seed
    assert name("mechanisms.referral.enabled=false", "horizon=30") == name()  # nothing but the graph's inputs
    assert name("population.size=999") is None  # a small market: generated every time
    assert store.key(small("graph=complete").graph, 3000, 0) is None
    before = name()
    monkeypatch.setattr("sim.graph.store.model_stamp", lambda: b"another model")  # an edit of the model's code
    assert name() != before


def test_a_broken_or_foreign_file_is_a_miss_and_is_replaced(kept):
    cfg = small()
    generated = GrowthModel.make_graph(cfg)
    (path,) = _files(kept)
    bad = {
        "not a zip": None,
        "too few rows": {"indptr": generated.indptr[:-1], "indices": generated.indices},
        "a neighbour who is no one": {"indptr": generated.indptr, "indices": np.where(np.arange(generated.indices.size) == 3,
                                                                                      cfg.population.size, generated.indices)},
        "falling row pointers": {"indptr": generated.indptr[::-1].copy(), "indices": generated.indices},
    }
    for why, arrays in bad.items():
        if arrays is None:
            path.write_bytes(b"PK\x03\x04 truncated")
        else:
            with open(path, "wb") as f:
                np.savez(f, **arrays)
        read = GrowthModel.make_graph(cfg)
        assert np.array_equal(read.indices, generated.indices) and np.array_equal(read.indptr, generated.indptr), why
        assert _files(kept) == [path], why  # removed, generated, kept again


def test_off_keep_false_or_an_unwritable_store_keep_nothing_and_never_fail(kept, tmp_path, monkeypatch):
    cfg = small()
    want = GrowthModel.make_graph(cfg, keep=False)
    assert _files(kept) == []
    monkeypatch.setenv("SIM_CACHE_DIR", "off")
    assert np.array_equal(GrowthModel.make_graph(cfg).indices, want.indices)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SIM_CACHE_DIR", str(blocker))
    assert np.array_equal(GrowthModel.make_graph(cfg).indices, want.indices)
    assert _files(kept) == []


def test_the_least_recently_used_graphs_go_beyond_the_budget(kept, monkeypatch):
    first = GrowthModel.make_graph(small(seed=1))
    size = _files(kept)[0].stat().st_size
    monkeypatch.setattr(store, "KEEP_BYTES", int(2.5 * size))
    GrowthModel.make_graph(small(seed=2))
    GrowthModel.make_graph(small(seed=1))  # read back: now the most recently used
    GrowthModel.make_graph(small(seed=3))
    left = {p.name for p in _files(kept)}
    names = {seed: store.key(small(seed=seed).graph, 3000, seed) + ".npz" for seed in (1, 2, 3)}
    assert left == {names[1], names[3]}
    assert first.indices.size > 0


def test_a_graph_larger_than_the_budget_is_not_kept_and_pushes_nothing_out(kept, monkeypatch):
    GrowthModel.make_graph(small(seed=1))
    (first,) = _files(kept)
    assert first.stat().st_mode & 0o777 == 0o644  # (readable by others sharing the folder)
    monkeypatch.setattr(store, "KEEP_BYTES", int(1.5 * first.stat().st_size))
    GrowthModel.make_graph(small("graph.avg_degree=40", seed=2))  # (about twice the bytes: over the budget alone)
    assert _files(kept) == [first]
