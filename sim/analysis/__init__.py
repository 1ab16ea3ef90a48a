"""Analysis of model runs: what runs mean, kept apart from which runs to make (``sim.experiment``).

- ``stats``: means with intervals over replicates, paired differences between strategies, verdicts;
- ``comparison``: the frames of a comparison or sweep (horizon metrics with intervals, differences);
- ``validation``: validation against stylized facts;
- ``sensitivity``: Morris screening and Sobol indices of horizon metrics (SALib);
- ``calibration``: fitting settings to target series (Optuna, seeded TPE);
- ``targets``: calibration targets as observed (market shares, period aggregates, ratios, shapes);
- ``identification``: which targets conflict and which parameters each one identifies, from the trials;
- ``group_buy``: what group buying did in a run, and what it brought and displaced in a comparison.
"""
