"""The plots of a run folder: every figure of the run's plan is there and named in its report, drawn
by one process, shared with a helper forked as the folder is written, or by the helper forked as the
simulation started (``simulate(plots_next=True)``); a helper that fails makes the write fail, leaving
no folder, no temporary and no process behind."""

from __future__ import annotations

import os
import signal

import pytest
from PIL import Image

import sim
from sim import folders, plots
from sim.runs import write_run_folder

SMALL = ["population.size=3000", "horizon=60"]


@pytest.fixture(scope="module")
def every_mechanism():
    return sim.simulate(sim.compose("all_mechanisms", SMALL))


def figures(path):
    return sorted(p.name for p in (path / "plots").iterdir())


def test_every_plot_of_the_plan_is_drawn_whether_shared_with_a_helper_or_not(tmp_path, every_mechanism):
    plan = [f"{name}.png" for name in plots.run_plan(every_mechanism)]
    assert {"growth.png", "retention.png", "money.png", "mechanisms.png"} <= set(plan)
    alone = write_run_folder(every_mechanism, tmp_path, name="alone", parallel=False)
    shared = write_run_folder(every_mechanism, tmp_path, name="shared", parallel=True)
    for path in (alone, shared):
        assert figures(path) == sorted(plan)
        assert sim.runs.is_complete(path)
        report = (path / "report.html").read_text()
        assert all(f"plots/{name}" in report for name in plan)
        for name in plan:
            with Image.open(path / "plots" / name) as image:
                image.verify()
    for name in plan:  # the same figures
        with Image.open(alone / "plots" / name) as a, Image.open(shared / "plots" / name) as b:
            assert a.size == b.size
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_split_shares_every_plot_once_and_the_longest_apart():
    names = ["growth", "activity", "retention", "cohort_heatmap", "money", "viral", "orders", "mechanisms"]
    for n in (1, 2, 3):
        groups = plots.split(names, n)
        assert sorted(sum(groups, [])) == sorted(names) and len(groups) == n
        assert all(g == [x for x in names if x in g] for g in groups)  # each in plan order
    writer, helper = plots.split(names, 2)
    assert "mechanisms" in helper and "retention" in writer  # the two longest apart


class Helpers:
    """The helper processes started, to check none is left once a write is over."""

    def __init__(self, monkeypatch):
        self.pids: list[int] = []
        start = folders.HelperProcess.start

        def recording(helper):
            helper = start(helper)
            self.pids.append(helper.pid)
            return helper

        monkeypatch.setattr(folders.HelperProcess, "start", recording)

    def all_gone(self) -> bool:
        for pid in self.pids:
            try:
                os.kill(pid, 0)  # (a zombie, not yet waited for, still answers)
                return False
            except ProcessLookupError:
                pass
        return bool(self.pids)


def failing_in_helper(monkeypatch, fail):
    """Make every plot call ``fail()`` when drawn by a helper process (not by the writer itself)."""
    writer = os.getpid()
    plan = plots.run_plan

    def run_plan(result):
        steps = plan(result)
        return {name: (lambda folder, draw=draw: fail() if os.getpid() != writer else draw(folder)) for name, draw in steps.items()}

    monkeypatch.setattr(plots, "run_plan", run_plan)


def test_the_helper_started_with_the_simulation_draws_every_plot(tmp_path, monkeypatch, every_mechanism):
    helpers = Helpers(monkeypatch)
    result = sim.simulate(sim.compose("all_mechanisms", SMALL), plots_next=True)
    assert result.plot_helper is not None and len(helpers.pids) == 1
    path = write_run_folder(result, tmp_path, name="ahead")
    assert figures(path) == sorted(f"{name}.png" for name in plots.run_plan(result))
    assert sim.runs.is_complete(path) and result.plot_helper is None
    assert sorted(p.name for p in path.iterdir()) == sorted([*sim.runs.RUN_FILES, "manifest.json", "plots"])  # (nothing else left)
    assert helpers.all_gone()  # (and the helper of its own it forked for half the plots, which it waited for)
    # drawn from the daily table handed over as the simulation ended and the cohort table read back
    # from its file: the same figures, byte for byte, as the writer draws alone from its frames
    alone = write_run_folder(every_mechanism, tmp_path, name="alone", parallel=False)
    for name in figures(path):
        assert (path / "plots" / name).read_bytes() == (alone / "plots" / name).read_bytes(), name


def test_the_helper_of_a_result_never_written_or_a_failed_simulation_is_stopped(monkeypatch):
    import gc

    helpers = Helpers(monkeypatch)
    result = sim.simulate(sim.compose("default", ["population.size=500", "horizon=5"]), plots_next=True)
    del result
    gc.collect()
    assert helpers.all_gone()

    def broken(cfg):
        raise RuntimeError("the model would not build")

    monkeypatch.setattr(sim.runs, "GrowthModel", broken)
    with pytest.raises(RuntimeError, match="would not build"):
        sim.simulate(sim.compose("default", ["population.size=500", "horizon=5"]), plots_next=True)
    assert len(helpers.pids) == 2 and helpers.all_gone()


@pytest.mark.parametrize("ahead", [False, True], ids=["forked-at-write", "forked-at-simulate"])
def test_a_helper_that_raises_makes_the_write_raise_it_and_leaves_nothing(tmp_path, monkeypatch, every_mechanism, ahead):
    helpers = Helpers(monkeypatch)

    def fail():
        raise ValueError("no ink left")

    failing_in_helper(monkeypatch, fail)
    result = sim.simulate(sim.compose("all_mechanisms", SMALL), plots_next=True) if ahead else every_mechanism
    with pytest.raises(ValueError, match="no ink left") as caught:
        write_run_folder(result, tmp_path, name="broken", parallel=None if ahead else True)
    assert any("helper process" in note and "no ink left" in note for note in caught.value.__notes__)  # its traceback
    assert list(tmp_path.iterdir()) == []  # no run folder, no temporary
    assert helpers.all_gone()


def test_a_helper_killed_makes_the_write_fail_and_leaves_nothing(tmp_path, monkeypatch, every_mechanism):
    helpers = Helpers(monkeypatch)
    failing_in_helper(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(RuntimeError, match="killed by signal"):
        write_run_folder(every_mechanism, tmp_path, name="killed", parallel=True)
    assert list(tmp_path.iterdir()) == []
    assert helpers.all_gone()


def test_an_interruption_of_the_writer_ends_its_helper_and_leaves_nothing(tmp_path, monkeypatch, every_mechanism):
    """Ctrl-C while the helper still draws: the helper is killed and waited for before the temporary
    folder goes, so nothing is written into it afterwards."""
    helpers = Helpers(monkeypatch)
    writer = os.getpid()
    plan = plots.run_plan

    def run_plan(result):
        def stop(folder):
            if os.getpid() == writer:
                raise KeyboardInterrupt
            import time
            time.sleep(30)  # (the helper, still busy)
        return {name: stop for name in plan(result)}

    monkeypatch.setattr(plots, "run_plan", run_plan)
    with pytest.raises(KeyboardInterrupt):
        write_run_folder(every_mechanism, tmp_path, name="stopped", parallel=True)
    assert list(tmp_path.iterdir()) == []
    assert helpers.all_gone()


def test_pool_workers_and_other_threads_draw_alone():
    import threading

    from sim.runs import spare_core

    seen = []
    thread = threading.Thread(target=lambda: seen.append(spare_core()))
    thread.start()
    thread.join()
    assert seen == [False]
    from joblib import Parallel, delayed

    assert Parallel(n_jobs=2, backend="loky")(delayed(spare_core)() for _ in range(2)) == [False, False]


def test_a_relay_slow_to_pass_on_the_folder_still_gives_the_whole_folder(tmp_path, monkeypatch):
    """The first helper passes the folder on to the second from a thread; however late that thread
    sends it, the first helper waits for it before it waits for the second helper."""
    import threading
    import time

    send = folders.HelperProcess.send

    def late(self, order, more=False, background=False):
        if threading.current_thread().name == "pass on" and not more:
            time.sleep(2.0)  # (the relay thread descheduled just before it sends the folder)
        return send(self, order, more, background)

    monkeypatch.setattr(folders.HelperProcess, "send", late)
    result = sim.simulate(sim.compose("default", SMALL), plots_next=True)
    assert result.plot_helper is not None
    path = write_run_folder(result, tmp_path, name="late")
    assert figures(path) == sorted(f"{name}.png" for name in plots.run_plan(result))
    assert sim.runs.is_complete(path)


@pytest.mark.parametrize("transparent", [False, True])
def test_a_figure_is_written_pixel_for_pixel_as_savefig_draws_it_and_as_rgb_where_it_is_opaque(tmp_path, transparent):
    import matplotlib.pyplot as plt
    import numpy as np

    def figure():
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1, 2], [1, 3, 2], label="line")
        plots._style(ax, "a title", "people")
        plots._legend(ax)
        fig.patch.set_alpha(0.0 if transparent else 1.0)
        return fig

    fig = figure()
    fig.savefig(tmp_path / "savefig.png", dpi=plots.DPI)
    plt.close(fig)
    plots._write(figure(), tmp_path / "written.png")
    written, drawn = Image.open(tmp_path / "written.png"), Image.open(tmp_path / "savefig.png")
    assert written.mode == ("RGBA" if transparent else "RGB") and drawn.mode == "RGBA"
    assert np.array_equal(np.asarray(written.convert("RGBA")), np.asarray(drawn))
    assert written.info["dpi"] == drawn.info["dpi"] and written.info["Software"] == drawn.info["Software"]
    assert (tmp_path / "written.png").stat().st_size < (tmp_path / "savefig.png").stat().st_size or transparent
