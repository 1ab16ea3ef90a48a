"""``sim dash``: an interactive local web app for strategists (Solara).

Choose a scenario, move the knobs of each mechanism (generated from the configuration schema, with
units and allowed ranges), watch growth, activity, retention and profit curves while the
simulation runs, watch a sample of the social graph change state day by day, compare two
strategies over replicates with interval bands, download the run folder or the comparison, and
copy the ``sim run`` command that reproduces what is on screen.

Modules: ``knobs`` (controls from the schema, overrides, the command), ``live`` (watching a run,
the graph sample), ``compare`` (two strategies over replicates), ``charts`` (ECharts options),
``app`` (the Solara page) and ``server`` (``sim dash``).
"""

from sim.dashboard.server import serve

__all__ = ["serve"]
