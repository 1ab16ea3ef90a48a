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
import numpy as np

#: the decorator every kernel uses: compiled without the GIL, cached beside the source
jit = numba.njit(cache=True, nogil=True)


# ------------------------------------------------------------------------------ adoption stage
@jit
def social_events(receiver, edge, invites_received, edge_sends, contacts, invites_top, sends_top):
    """Walk today's social exposure events in order, updating the memories they leave.

    For event ``i`` (an invitation or share reaching ``receiver[i]`` along stored edge ``edge[i]``,
    or ``-1`` when it travelled no stored edge) returns ``prior[i]``, the invitations the receiver
    had received before it (earlier days and earlier events today), and ``repeats[i]``, how often the
    same edge had carried one before. A first contact along an edge adds one to the receiver's
    ``contacts``. Counters saturate at ``invites_top`` and ``sends_top`` (a hub of a million-person
    graph can receive more invitations than an int16 holds).

    A kernel because each event's counts depend on the events before it: numpy needs a stable
    sort per key (receiver, edge) and several gathers and scatters for the same result.
    """
    n = receiver.size
    prior = np.empty(n, dtype=np.int64)
    repeats = np.zeros(n, dtype=np.int64)
    for i in range(n):
        r = receiver[i]
        k = invites_received[r]
        prior[i] = k
        if k < invites_top:
            invites_received[r] = k + 1
        e = edge[i]
        if e >= 0:
            s = edge_sends[e]
            repeats[i] = s
            if s < sends_top:
                edge_sends[e] = s + 1
            if s == 0:
                contacts[r] += 1
        else:
            contacts[r] += 1
    return prior, repeats


@jit
def first_success(receiver, u, prob, best):
    """Positions of the events that win, one per receiver, in ascending order of receiver.

    Event ``i`` succeeds when ``u[i] < prob[i]``; of a receiver's successes the one with the smallest
    ``u / prob`` wins (given success, ``u / prob`` is uniform, so competing channels each win in
    proportion to their chance; ties go to the earlier event). ``best`` is scratch of one int64 per
    person, all ``-1``, and is left so.
    """
    n = receiver.size
    touched = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if u[i] < prob[i]:
            r = receiver[i]
            j = best[r]
            if j < 0:
                best[r] = i
                touched[m] = r
                m += 1
            elif u[i] / prob[i] < u[j] / prob[j]:
                best[r] = i
    people = np.sort(touched[:m])
    out = np.empty(m, dtype=np.int64)
    for k in range(m):
        out[k] = best[people[k]]
        best[people[k]] = -1
    return out
