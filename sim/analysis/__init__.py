"""Analysis of simulation output: what runs mean, kept apart from which runs to make (``sim.experiment``).

- ``stats``: means with intervals over replicates, paired differences between strategies, verdicts.
"""
