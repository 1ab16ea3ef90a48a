"""Fingerprints of model outputs, for refactors that must keep results bit for bit.

Runs a fixed set of configurations (every mechanism, each contagion, the diffusion presets, several
strategies and graph families; two seeds each) and prints one SHA-256 per run over its daily
metrics, cohort cells, channel table and every per-person column at the horizon. Run it before and
after a change and compare the outputs with ``diff``::

    .venv/bin/python tools/fingerprint.py > /tmp/before.txt
    ... change ...
    .venv/bin/python tools/fingerprint.py > /tmp/after.txt && diff /tmp/before.txt /tmp/after.txt

Equal fingerprints say the change moved no number of these runs; they are machine-specific (only
``exp`` and friends may differ in the last bit between CPUs), so compare runs of one machine.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pandas as pd

import sim

SMALL = ["population.size=4000", "horizon=150"]
RUNS: list[tuple[str, list[str]]] = [
    ("default", []),
    ("all_mechanisms", []),
    ("all_mechanisms", ["adoption.contagion=complex", "adoption.threshold=2"]),
    ("all_mechanisms", ["mechanisms.referral.reward_form=coupon", "graph=er"]),
    ("all_mechanisms", ["graph=ws", "mechanisms.paid_acquisition.budget_per_1000=15"]),
    ("all_mechanisms", ["graph=sbm", "mechanisms.loyalty.paid_membership=true"]),
    ("bass_network", []),
    ("ic", []),
    ("lt", []),
    ("share_group_buy", []),
    ("content_community", []),
    ("s2b2c_distribution", []),
    ("full_operations", []),
    ("promotion_calendar", []),
    ("coupons_lax_screening", []),
    ("winback_14", []),
]


def _hash_frame(h, frame: pd.DataFrame) -> None:
    for name in frame.columns:
        h.update(str(name).encode())
        values = frame[name].to_numpy()
        if values.dtype == object:  # text: the bytes of an object array are pointers
            h.update("\x1f".join(map(str, values)).encode())
        else:
            h.update(np.ascontiguousarray(values).tobytes())


def fingerprint(scenario: str, overrides: list[str], seed: int) -> str:
    result = sim.simulate(sim.compose(scenario, [*SMALL, *overrides], seed=seed))
    h = hashlib.sha256()
    for frame in (result.daily, result.cohorts, result.channels):
        _hash_frame(h, frame)
    pop = result.model.pop
    columns = {k: v for k, v in vars(pop).items() if isinstance(v, np.ndarray)} | {f"extra.{k}": v for k, v in pop.extra.items()}
    for name, column in sorted(columns.items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(column).tobytes())
    return h.hexdigest()[:16]


def main(argv: list[str]) -> int:
    seeds = (0, 1)
    for scenario, overrides in RUNS:
        for seed in seeds:
            print(f"{scenario:22s} {' '.join(overrides) or '-':60s} seed={seed} {fingerprint(scenario, overrides, seed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
