"""Compiled kernels: the engine's machinery, with no decision rule in it.

The passes here move people and events around: the day's exposure events (which reach non-users,
which of a person's competing chances wins), the user index, a join's columns, booked orders and
their categories, cohort cells, the graph generators' attachment, sets and bitmaps of people, and
sorting helpers. Each is one pass in array order, tested bit for bit against the same step written
in numpy (``tests/test_kernels.py``, ``tests/test_engine_stages.py``, ``tests/test_user_index.py``).
The decision rules themselves (visit, purchase, churn, sharing, social response) and the passes that
apply them are in ``sim.behaviour``.

Rules every kernel follows, so that runs stay bit for bit reproducible:

- no randomness inside a kernel: uniforms are drawn by the caller from the model's seeded streams
  (``sim.streams``) and passed in;
- a kernel visits its events in array order and its result depends only on its inputs;
- a pass over many elements that are independent of each other may run in two halves at once
  (``sim.halves``): its compiled form takes ``lo, hi`` and a Python function of the same name
  without the underscore hands it to ``halves.run``, with the same results on one thread or two;
- compiled once and cached on disk (``sim.compiled``), so a run pays the compile only the first time
  on a machine; ``NUMBA_DISABLE_JIT=1`` runs the same code as plain Python (for debugging).
"""

from __future__ import annotations

import numpy as np

from sim import halves
from sim.compiled import jit


# ------------------------------------------------------------------------------ adoption stage
def keep_reachable(receiver, channel, prob, sender, edge, people, day, codes) -> int:
    """Today's exposure events: keeps (compacted in place, in order; returns how many) those that
    reach people in the market who have not joined (``people``: state, aware day and the mask of
    people in the market who never joined; ``codes``: the potential and aware state codes); the
    people reached for the first time become aware today.

    In two halves at once for many events (:mod:`sim.halves`): a person reached from both halves
    may be made aware by both, which write the same state and day."""
    parts = halves.run(_keep_reachable, receiver.size, receiver, channel, prob, sender, edge, people, day, codes)
    return halves.joined(parts, receiver, channel, prob, sender, edge)


@jit
def _keep_reachable(receiver, channel, prob, sender, edge, people, day, codes, lo, hi):
    """:func:`keep_reachable` for the events ``lo .. hi - 1``, kept from position ``lo`` on."""
    state, aware_day, open_to_join = people
    potential, aware = codes
    m = lo
    for i in range(lo, hi):
        r = receiver[i]
        if not open_to_join[r]:  # a user already, or not in the market yet
            continue
        s = state[r]
        if s == potential:
            state[r] = aware
            aware_day[r] = day
        if s <= aware:
            receiver[m] = r
            channel[m] = channel[i]
            prob[m] = prob[i]
            sender[m] = sender[i]
            edge[m] = edge[i]
            m += 1
    return m - lo


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


# ------------------------------------------------------------------------------ visits and the lifecycle
def joined_before(users, joined_day, day) -> np.ndarray:
    """The users (in order) who joined before ``day``: today's joiners visited by joining."""
    out = np.empty(users.size, dtype=np.int64)
    return out[:halves.joined(halves.run(_joined_before, users.size, users, joined_day, day, out), out)]


@jit
def _joined_before(users, joined_day, day, out, lo, hi):
    m = lo
    for k in range(lo, hi):
        i = users[k]
        if joined_day[i] < day:
            out[m] = i
            m += 1
    return m - lo


def record_visits(cand, u, p, day, state, dormant, last_visit, visits) -> tuple[np.ndarray, np.ndarray]:
    """The visitors of the day among ``cand`` (distinct users; those with ``u < p``), in order, and
    which of them were dormant; each visitor's last visit becomes ``day`` and their visit count rises by one."""
    visitors = np.empty(cand.size, dtype=np.int64)
    back = np.empty(cand.size, dtype=np.int64)
    parts = halves.run(_record_visits, cand.size, cand, u, p, day, (state, dormant, last_visit, visits), visitors, back)
    m = halves.joined([(lo, kept[0]) for lo, kept in parts], visitors)
    b = halves.joined([(lo, kept[1]) for lo, kept in parts], back)
    return visitors[:m], back[:b]


@jit
def _record_visits(cand, u, p, day, people, visitors, back, lo, hi):
    state, dormant, last_visit, visits = people
    m = b = lo
    for k in range(lo, hi):
        if u[k] < p[k]:
            i = cand[k]
            visitors[m] = i
            m += 1
            if state[i] == dormant:
                back[b] = i
                b += 1
            last_visit[i] = day
            visits[i] += 1
    return m - lo, b - lo


def loyalty_transitions(users, state, orders, satisfaction, min_orders, min_sat32, down_sat32, active, loyal) -> None:
    """Active users with enough orders and satisfaction become loyal; loyal users whose satisfaction
    fell below ``down_sat32`` become active again (thresholds in float32, as numpy compares them with
    the float32 column)."""
    halves.run(_loyalty_transitions, users.size, users, (state, orders, satisfaction), (min_orders, min_sat32, down_sat32), (active, loyal))


@jit
def _loyalty_transitions(users, columns, thresholds, codes, lo, hi):
    state, orders, satisfaction = columns
    min_orders, min_sat32, down_sat32 = thresholds
    active, loyal = codes
    for k in range(lo, hi):
        i = users[k]
        st = state[i]
        if st == active:
            if orders[i] >= min_orders and satisfaction[i] >= min_sat32:
                state[i] = loyal
        elif st == loyal and satisfaction[i] < down_sat32:
            state[i] = active


# ------------------------------------------------------------------------------ exposure stage
@jit
def keep_first_accepted(draws, accept, k, picked, m, mark):
    """Append to ``picked[:m]`` the draws that ``accept`` and that are not marked yet, in draw order,
    until ``k`` are picked; marks them. Returns the new count. ``mark`` is scratch of one bool per
    person, all False before the first call; :func:`unmark` clears it after the last."""
    for d in draws:
        if m >= k:
            break
        if accept[d] and not mark[d]:
            mark[d] = True
            picked[m] = d
            m += 1
    return m


@jit
def unmark(idx, mark):
    for i in idx:
        mark[i] = False


@jit
def join_columns(idx, channel, sender, day, columns, onboarding):
    """The columns of people ``idx`` (distinct) who join today through ``channel`` from ``sender``:
    active, joined and visited today, the initial need, onboarding friction off their satisfaction
    (clipped to [0, 1], in float32) and their frailty times the channel's (float32). ``columns``:
    state, joined_day, channel, referrer, last_visit, visits, need, need_day, satisfaction, frailty;
    ``onboarding``: the active state's code, the initial need, the friction and the frailty
    multiplier by channel."""
    state, joined_day, channel_col, referrer, last_visit, visits, need, need_day, satisfaction, frailty = columns
    active, initial_need, friction, channel_frailty = onboarding
    for i in range(idx.size):
        p = idx[i]
        state[p] = active
        joined_day[p] = day
        channel_col[p] = channel[i]
        referrer[p] = sender[i]
        last_visit[p] = day
        visits[p] = 1
        need[p] = initial_need
        need_day[p] = day
        satisfaction[p] = min(max(satisfaction[p] - friction, np.float32(0)), np.float32(1))
        frailty[p] *= channel_frailty[channel[i]]


# ------------------------------------------------------------------------------ the user index
@jit
def _distinct_where(idx, state, lo, hi, inside, seen):
    """The distinct people of ``idx`` whose state is (``inside``) or is not in ``[lo, hi]``, sorted;
    ``seen`` is an all-false scratch mask over everyone, all false again on return."""
    found = np.empty(idx.size, dtype=np.int64)
    k = 0
    for i in range(idx.size):
        p = idx[i]
        s = state[p]
        if (lo <= s <= hi) == inside and not seen[p]:
            seen[p] = True
            found[k] = p
            k += 1
    found = np.sort(found[:k])
    for j in range(k):
        seen[found[j]] = False
    return found


@jit
def add_users(users, idx, state, lo, hi, non_user, seen):
    """The sorted user index ``users`` with the people of ``idx`` (repeats allowed) who are not
    users (state outside ``[lo, hi]``) merged in; those who never joined leave ``non_user``.
    Returns the new index and how many never joined before: the newcomers are sorted, then merged
    into the index in one pass."""
    new = _distinct_where(idx, state, lo, hi, False, seen)
    never = 0
    for p in new:
        if non_user[p]:
            non_user[p] = False
            never += 1
    return merge_sorted(users, new), never


@jit
def merge_sorted(a, b):
    """The ascending arrays ``a`` and ``b`` (no value in both) merged into one ascending int64 array:
    sorted indexes of people (users, resellers) gaining a few more."""
    out = np.empty(a.size + b.size, dtype=np.int64)
    i = j = 0
    for k in range(out.size):
        if j == b.size or (i < a.size and a[i] < b[j]):
            out[k] = a[i]
            i += 1
        else:
            out[k] = b[j]
            j += 1
    return out


@jit
def drop_users(users, idx, state, lo, hi, seen):
    """The sorted user index ``users`` without the people of ``idx`` who are users (state in
    ``[lo, hi]``): one pass over the index, equal to ``np.delete`` of their positions."""
    gone = _distinct_where(idx, state, lo, hi, True, seen)
    for p in gone:
        seen[p] = True
    out = np.empty(users.size - gone.size, dtype=np.int64)
    k = 0
    for p in users:
        if not seen[p]:
            if k == out.size:  # a user by state who is not in the index (a bug elsewhere): never write past the end
                raise ValueError("drop_users: the user index disagrees with the states")
            out[k] = p
            k += 1
    for p in gone:
        seen[p] = False
    return out


@jit
def count_states(idx, state, n_states):
    """``np.bincount(state[idx], minlength=n_states)``: people ``idx`` per state, without the gathered
    copy and its widening."""
    counts = np.zeros(n_states, dtype=np.int64)
    for i in idx:
        counts[state[i]] += 1
    return counts


# ------------------------------------------------------------------------------ purchases
@jit
def add_at(column, idx, delta):
    """``np.add.at(column, idx, delta)``: additions in array order (repeats add up), in the column's
    precision, as ``np.add.at`` makes them, without its per-call overhead and slow indexed loop
    (``delta`` has one entry per index, or one for all)."""
    one = delta.size == 1
    for k in range(idx.size):
        column[idx[k]] += delta[0] if one else delta[k]


@jit
def order_categories(buyers, u, taste_u, taste_strength, other, favourite, recommended, follow):
    """Category of each order: the recommended one where there is one (``>= 0``) and ``u < follow``,
    else the buyer's favourite where ``taste_u < taste_strength``, else ``other`` (drawn by
    popularity). ``recommended`` empty: no recommendations."""
    out = np.empty(buyers.size, dtype=np.int64)
    has_rec = recommended.size > 0
    for k in range(buyers.size):
        if has_rec and recommended[k] >= 0 and u[k] < follow[k]:
            out[k] = recommended[k]
        elif taste_u[k] < taste_strength:
            out[k] = favourite[buyers[k]]
        else:
            out[k] = other[k]
    return out


@jit
def book_buyers(buyers, basket, u, failure_rate, failure_delta, purchase_delta, orders, spend, satisfaction):
    """One more order and ``basket`` more spend for each entry of ``buyers`` (repeats add up), and
    their satisfaction moved by ``failure_delta`` where the order went wrong (``u < failure_rate``),
    else by ``purchase_delta`` (float32; added in order, then clipped to [0, 1]: ``add_clipped``)."""
    for k in range(buyers.size):
        i = buyers[k]
        orders[i] += 1
        spend[i] += basket[k]
        satisfaction[i] += failure_delta if u[k] < failure_rate else purchase_delta
    for k in range(buyers.size):
        i = buyers[k]
        satisfaction[i] = min(max(satisfaction[i], np.float32(0)), np.float32(1))


# ------------------------------------------------------------------------------ daily metrics
@jit
def note_last_orders(buyers, day, last_order, last_ordered_on):
    """Today's orders in each person's last order day (``buyers``: one entry per order, repeats
    allowed), keeping ``last_ordered_on[d]``, the people whose last order was on day ``d``, in step."""
    for k in range(buyers.size):
        b = buyers[k]
        d = last_order[b]
        if d != day:
            if d >= 0:
                last_ordered_on[d] -= 1
            last_ordered_on[day] += 1
            last_order[b] = day


@jit
def count_recent(last_visit, week_from, month_from):
    """People whose last visit is on or after ``week_from`` and on or after ``month_from`` (weekly
    and monthly actives): one pass over everyone for both counts."""
    week = 0
    month = 0
    for i in range(last_visit.size):
        d = last_visit[i]
        if d >= month_from:
            month += 1
        if d >= week_from:
            week += 1
    return week, month


@jit
def record_cohorts(day, visitors, buyers, basket, joined_day, channel, alive_now, cohort_alive, cohort_retained,
                   cohort_gmv):
    """Today's cell of every cohort (join day x channel) younger than the tracked ages: members
    alive, members who visited, and their GMV (added in order of ``buyers``, as ``np.bincount`` with
    weights adds them). The cell arrays are indexed (day, ages - 1 - age, channel): today's cells are
    the block ``[day]`` (``sim.metrics``). Called once per day: visits and GMV are added to today's
    cells, which start at zero."""
    ages = cohort_alive.shape[1]
    first = max(0, day - ages + 1)
    today_alive, today_retained, today_gmv = cohort_alive[day], cohort_retained[day], cohort_gmv[day]
    for c in range(first, day + 1):
        today_alive[ages - 1 - (day - c), :] = alive_now[c]
    for k in range(visitors.size):
        i = visitors[k]
        age = day - joined_day[i]
        if age < ages:
            today_retained[ages - 1 - age, channel[i]] += 1
    for k in range(buyers.size):
        i = buyers[k]
        age = day - joined_day[i]
        if age < ages:
            today_gmv[ages - 1 - age, channel[i]] += basket[k]


# ------------------------------------------------------------------------------ fading columns
#: the smallest normal float32: a fading float32 column holds no value below it (see :func:`fade`)
FLOAT32_TINY = np.float32(np.finfo(np.float32).tiny)


@jit
def fade(column, factor32):
    """``column *= factor32`` (a float32 column that fades a little every day: fatigue, a habit), as
    numpy computes it, except that a value falling below the smallest normal float32 (1.2e-38)
    becomes 0. Below it numbers are subnormal, which processors multiply some hundred times more
    slowly: without this, every value of a column that fades for good would spend about a hundred
    days there from its second year on, and a day would cost more as the horizon grows. A fatigue
    or habit that small acts as zero does (it is added to increments far above it, compared with
    thresholds far above it, or scales an exponent to nothing), so the run is the same; zeros are
    skipped."""
    for i in range(column.size):
        x = column[i]
        if x != 0:
            x = x * factor32
            column[i] = x if abs(x) >= FLOAT32_TINY else np.float32(0.0)


# ------------------------------------------------------------------------------ graph generators
@jit
def attachment_nodes(ptr, m):
    """Batagelj-Brandes preferential attachment: the node at every slot of the edge-endpoint array.

    Slot ``2s`` holds the new node of edge ``s`` (``s // m``); slot ``2s + 1`` copies the node at slot
    ``ptr[s] <= 2s``, already known when slots are filled in order."""
    out = np.empty(2 * ptr.size, dtype=np.int64)
    for s in range(ptr.size):
        out[2 * s] = s // m
        out[2 * s + 1] = out[ptr[s]]
    return out


@jit
def row_contains(rows, which, value):
    """``(rows[which] == value[:, None]).any(axis=1)`` without the gathered copy of the rows."""
    out = np.zeros(which.size, dtype=np.bool_)
    for k in range(which.size):
        r = which[k]
        for j in range(rows.shape[1]):
            if rows[r, j] == value[k]:
                out[k] = True
                break
    return out


# ------------------------------------------------------------------------------ ranks and sorting
def rank_within(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... for successive occurrences of each key, in array order."""
    if keys.size <= SMALL:  # few keys: one compiled call
        return _rank_within(np.asarray(keys, dtype=np.int64))
    return occurrences(keys)[0]


SMALL = 1024  # keys ranked by _rank_within (larger arrays: the packed-key sort)


def occurrences(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rank_within(keys)``, the distinct keys and how often each occurs, from one sort."""
    if keys.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    order, sk = stable_order(keys)
    n = sk.size
    start = np.empty(n, dtype=bool)
    start[0] = True
    np.not_equal(sk[1:], sk[:-1], out=start[1:])
    begin = start.nonzero()[0]
    counts = np.empty(begin.size, dtype=np.int64)
    counts[-1] = n - begin[-1]
    np.subtract(begin[1:], begin[:-1], out=counts[:-1])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(begin, counts)
    return rank, sk[begin], counts


def stable_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order = argsort(keys, kind="stable")`` and ``keys[order]`` for integer keys, by one plain
    sort of (key, position) packed into an int64 (several times faster than a stable argsort)."""
    n = keys.size
    if n < 256:  # few keys: fewer numpy calls this way
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    lo, hi = int(keys.min()), int(keys.max())
    bits = max(n - 1, 1).bit_length()
    if (hi - lo).bit_length() + bits > 62:
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    packed = ((keys.astype(np.int64) - lo) << bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << bits) - 1), (packed >> bits) + lo


@jit
def _rank_within(keys):
    """:func:`rank_within` of a few keys (up to ``SMALL``, as mechanisms rank a few hundred a day):
    one stable sort and one pass, in a single compiled call."""
    n = keys.size
    order = np.argsort(keys, kind="mergesort")  # stable
    rank = np.empty(n, dtype=np.int64)
    r = 0
    for j in range(n):
        i = order[j]
        r = r + 1 if j > 0 and keys[i] == keys[order[j - 1]] else 0
        rank[i] = r
    return rank


# ------------------------------------------------------------------------------ numpy's searches, inside compiled passes
# numba's own np.searchsorted, np.flatnonzero and array.max() keep a reference to their module
# (numba's array maths) in the cache entry of every kernel that calls them; loading such an entry
# imports that module and with it, through numba's check that BLAS exists, scipy.linalg: 0.3 s of a
# process that simulates anything. These give the same results and keep kernels' entries free of it.
@jit
def search_sorted(a, x):
    """``np.searchsorted(a, x)`` (side "left") for one value ``x`` in the sorted array ``a``: the
    first position whose value is not below ``x``."""
    lo, hi = 0, a.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def search_sorted_right(a, x):
    """``np.searchsorted(a, x, side="right")`` for one value ``x``: the first position whose value is
    above ``x``."""
    lo, hi = 0, a.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def nonzero_positions(mask):
    """``np.flatnonzero(mask)`` of a one-dimensional array: the positions of its true elements, in order."""
    n = 0
    for k in range(mask.size):
        if mask[k]:
            n += 1
    out = np.empty(n, dtype=np.int64)
    n = 0
    for k in range(mask.size):
        if mask[k]:
            out[n] = k
            n += 1
    return out


@jit
def largest(a):
    """``a.max()`` of a non-empty one-dimensional array (nan when it holds a nan, as numpy's)."""
    m = a[0]
    for k in range(1, a.size):
        v = a[k]
        if v > m or v != v:
            m = v
            if v != v:
                break
    return m


# ------------------------------------------------------------------------------ requests to friends: group buying and assists
@jit
def free_of(v, taken, bits):
    """``v`` without the people in ``taken``: the visitors in no open team (``taken``: the members) or
    with no open request (friend assists: the requesters). ``bits`` is scratch of one bit
    per person (``uint8``, all 0) and is left so.

    A kernel, and a bitmap, because the few people taken fit in a bitmap of a few kilobytes while a
    per-person column (``team[v] == NO_TEAM``) costs a cache miss per visitor."""
    for p in taken:
        bits[p >> 3] |= np.uint8(1 << (p & 7))
    out = np.empty(v.size, v.dtype)
    m = 0
    for k in range(v.size):
        i = v[k]
        if not (bits[i >> 3] >> (i & 7)) & 1:
            out[m] = i
            m += 1
    for p in taken:
        bits[p >> 3] = 0
    return out[:m]


def person_bits(n: int) -> np.ndarray:
    """Scratch for :func:`free_of`: one bit per person."""
    return np.zeros(n // 8 + 1, np.uint8)


@jit
def links_to_send(mean, u, owner):
    """Each row ``r`` once per link it sends, ``stochastic_round(mean[r], u[r])`` times (``np.repeat``
    of the rows), and the owner (initiator or requester) of each: the senders of team links, and of
    assist requests (``sim.mechanisms.assist``)."""
    total = 0
    n = np.empty(mean.size, np.int64)
    for r in range(mean.size):
        n[r] = np.int64(np.floor(mean[r] + u[r]))
        total += n[r]
    rows = np.empty(total, np.int64)
    who = np.empty(total, owner.dtype)
    j = 0
    for r in range(mean.size):
        for _ in range(n[r]):
            rows[j] = r
            who[j] = owner[r]
            j += 1
    return rows, who


@jit
def links_sent(rows, target, edge):
    """The links that found a friend (``target >= 0``): their rows, targets (as int64) and edges."""
    keep = 0
    for k in range(target.size):
        keep += target[k] >= 0
    out_rows = np.empty(keep, np.int64)
    out_target = np.empty(keep, np.int64)
    out_edge = np.empty(keep, np.int64)
    j = 0
    for k in range(target.size):
        if target[k] >= 0:
            out_rows[j], out_target[j], out_edge[j] = rows[k], target[k], edge[k]
            j += 1
    return out_rows, out_target, out_edge


# ------------------------------------------------------------------------------ members of a set
@jit
def positions_in(v, people, mark):
    """The positions in ``v`` of the entries that are among ``people`` (repeats allowed), in order:
    ``np.flatnonzero(np.isin(v, people))`` by marking ``people`` in ``mark`` (scratch of one bool per
    person, all False, and left so) and one pass over ``v`` reading the dense marks (the visitors
    who saw a reseller's post, the campaign targets among promotions' new users)."""
    for i in people:
        mark[i] = True
    pos = np.empty(v.size, dtype=np.int64)
    m = 0
    for k in range(v.size):
        if mark[v[k]]:
            pos[m] = k
            m += 1
    for i in people:
        mark[i] = False
    return pos[:m]


# ------------------------------------------------------------------------------ per-person flags as bitmaps
def bitmap(flags: np.ndarray) -> np.ndarray:
    """A per-person flag that does not change as one bit per person, for :func:`flagged`."""
    return np.packbits(flags, bitorder="little")


@jit
def flagged(v, bits):
    """``v[flag[v]]`` for a flag kept as a :func:`bitmap`: the farmers among visitors (here), the
    well-connected (``sim.mechanisms.content``). A bitmap of a few kilobytes stays in cache where
    the per-person column costs a cache miss per visitor."""
    out = np.empty(v.size, v.dtype)
    m = 0
    for k in range(v.size):
        i = v[k]
        if (bits[i >> 3] >> (i & 7)) & 1:
            out[m] = i
            m += 1
    return out[:m]
