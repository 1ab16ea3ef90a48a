"""Compiled kernels for the daily steps numpy cannot express without sorting or many passes.

DESIGN section 5 allows numba "for a kernel numpy cannot express": per-event counters whose value
depends on the events before it on the same day (how many invitations a person has received so
far, how often this edge has carried one), the best of several competing events per person, a walk
along a CSR row until a neighbour passes a test. In numpy each of these is a sort plus several
gathers and scatters; here it is one pass in array order.

Rules every kernel follows, so that runs stay bit for bit reproducible:

- no randomness inside a kernel: uniforms are drawn by the caller from the model's seeded streams
  (``sim.streams``) and passed in;
- a kernel visits its events in array order and its result depends only on its inputs;
- compiled once and cached on disk (``cache=True``), so a run pays the compile only the first time
  on a machine; ``NUMBA_DISABLE_JIT=1`` runs the same code as plain Python (for debugging).
"""

from __future__ import annotations

import numba

#: the decorator every kernel uses: compiled without the GIL, cached beside the source
jit = numba.njit(cache=True, nogil=True)
