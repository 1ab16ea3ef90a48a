"""Compiled kernels for the daily steps numpy cannot express without sorting or many passes.

DESIGN section 5 allows numba "for a kernel numpy cannot express": per-event counters whose value
depends on the events before it on the same day (how many invitations a person has received so
far, how often this edge has carried one), the best of several competing events per person, the
first distinct accepted draws. In numpy each of these is a sort plus several gathers and scatters;
here it is one pass in array order.

This module goes further than DESIGN section 5, for speed: it also fuses the per-user terms of a
stage (visit odds, churn hazard, latent demand, sharing propensity), which numpy can express but only as a
gather and a temporary array per term. At 100,000 people and more a day's work is a few thousand
such passes over arrays of tens of thousands, and fusing them is what brings a year of every
mechanism within seconds. Each fused kernel does numpy's arithmetic term by term in the same
precision, with the same lookup tables, and is tested against the numpy form it replaced
(tests/test_kernels.py); only ``exp`` may differ in the last bit (LLVM's against numpy's).

Rules every kernel follows, so that runs stay bit for bit reproducible:

- no randomness inside a kernel: uniforms are drawn by the caller from the model's seeded streams
  (``sim.streams``) and passed in;
- a kernel visits its events in array order and its result depends only on its inputs;
- compiled once and cached on disk (``sim.compiled``), so a run pays the compile only the first time
  on a machine; ``NUMBA_DISABLE_JIT=1`` runs the same code as plain Python (for debugging).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import jit


# ------------------------------------------------------------------------------ adoption stage
@jit
def keep_reachable(receiver, channel, prob, sender, edge, state, aware_day, day, potential, aware):
    """Today's exposure events: keeps (compacted in place, in order; returns how many) those that
    reach people who have not joined (state up to ``aware``); the people reached for the first time
    become aware today.

    A kernel because numpy needs the mask and a gather per event column."""
    m = 0
    for i in range(receiver.size):
        r = receiver[i]
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
    return m


@jit
def social_events(receiver, sender, edge, prob, invites_received, edge_sends, contacts, invites_top, sends_top,
                  saturation_table, fade_table, shift, threshold):
    """Walk today's exposure events in order; for the social ones (``sender >= 0``) update the memories
    they leave and scale their conversion ``prob`` (in place) by the social response.

    Social event ``i`` reaches ``receiver[i]`` along stored edge ``edge[i]`` (``-1``: no stored edge).
    Its response is ``saturation_table[max(prior - shift, 0)] * fade_table[repeats]``, where ``prior``
    counts the invitations the receiver had received before it (earlier days and earlier events
    today) and ``repeats`` how often the same edge had carried one before; ``shift`` is
    ``threshold - 1`` under complex contagion (the invitations that bring a person up to the
    threshold are reinforcement, not saturation) and 0 otherwise. A first contact along an edge adds
    one to the receiver's ``contacts``; under complex contagion (``threshold > 0``) an event whose
    receiver has fewer than ``threshold`` contacts after all of today's events converts with 0.
    Counters saturate at ``invites_top`` (also the cap of ``contacts``) and ``sends_top``: a hub of a
    million-person graph can receive more invitations than an int16 holds. Events see the saturated
    counts (numpy's form saw the count before saturation; beyond 32,767 invitations or 250 repeats
    the response factors are 0 to double precision either way).

    A kernel because each event's counts depend on the events before it: numpy needs a stable
    sort per key (receiver, edge) and several gathers and scatters for the same result.
    """
    for i in range(receiver.size):
        if sender[i] < 0:
            continue
        r = receiver[i]
        prior = invites_received[r]
        if prior < invites_top:
            invites_received[r] = prior + 1
        repeats = 0
        e = edge[i]
        if e >= 0:
            repeats = edge_sends[e]
            if repeats < sends_top:
                edge_sends[e] = repeats + 1
            if repeats == 0 and contacts[r] < invites_top:
                contacts[r] += 1
        elif contacts[r] < invites_top:
            contacts[r] += 1
        prob[i] *= saturation_table[max(np.int64(prior) - shift, 0)] * fade_table[repeats]
    if threshold > 0:
        for i in range(receiver.size):
            if sender[i] >= 0 and contacts[receiver[i]] < threshold:
                prob[i] = 0.0


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


# ------------------------------------------------------------------------------ per-user passes
# The visit and retention stages compute a handful of terms per user from as many columns. In numpy
# each term is a gather over the users and a temporary array; here it is one pass. The arithmetic is
# numpy's, term by term and in the same precision (float32 where numpy computes in float32), and
# functions of small integers come from the same lookup tables (sim.behaviour._table), so the
# results equal the numpy forms' (tests/test_kernels.py compares them).
@jit
def visit_probability(idx, segment, satisfaction, base_sat, logit_rate, visits, log1p_table, state, state_odds,
                      boost, sat_weight, habit_weight):
    """Daily visit probability of users ``idx`` (see ``sim.behaviour.visit_probability``)."""
    n = idx.size
    out = np.empty(n, dtype=np.float64)
    has_boost = boost.size > 0
    for k in range(n):
        i = idx[k]
        g = segment[i]
        x = logit_rate[g]
        x = x + sat_weight * (np.float64(satisfaction[i]) - base_sat[g])
        x = x + habit_weight * log1p_table[visits[i]]
        x = x + state_odds[state[i]]
        if has_boost:
            x = x + np.float64(boost[i])
        out[k] = 1.0 / (1.0 + np.exp(-x))
    return out


@jit
def joined_before(users, joined_day, day):
    """The users (in order) who joined before ``day``: today's joiners visited by joining."""
    out = np.empty(users.size, dtype=np.int64)
    m = 0
    for i in users:
        if joined_day[i] < day:
            out[m] = i
            m += 1
    return out[:m]


@jit
def record_visits(cand, u, p, day, state, dormant, last_visit, visits):
    """The visitors of the day among ``cand`` (those with ``u < p``), in order, and which of them
    were dormant; each visitor's last visit becomes ``day`` and their visit count rises by one.
    A kernel because numpy takes a mask, two gathers and two scatters."""
    visitors = np.empty(cand.size, dtype=np.int64)
    back = np.empty(cand.size, dtype=np.int64)
    m = b = 0
    for k in range(cand.size):
        if u[k] < p[k]:
            i = cand[k]
            visitors[m] = i
            m += 1
            if state[i] == dormant:
                back[b] = i
                b += 1
            last_visit[i] = day
            visits[i] += 1
    return visitors[:m], back[:b]


@jit
def churn_hazard(idx, day, joined_day, segment, frailty, satisfaction, base_sat, friends, state, base_hazard32,
                 tenure_table, sat_weight, friends_table, use_friends, state_ratio, hazard_ratio):
    """Daily churn hazard of users ``idx`` (see ``sim.behaviour.churn_hazard``); the tables cover every
    age and friend count the caller can meet."""
    n = idx.size
    out = np.empty(n, dtype=np.float64)
    has_ratio = hazard_ratio.size > 0
    for k in range(n):
        i = idx[k]
        h = np.float64(base_hazard32 * frailty[i]) * tenure_table[day - joined_day[i]]
        h = h * np.exp(-sat_weight * (np.float64(satisfaction[i]) - base_sat[segment[i]]))
        if use_friends:
            h = h * friends_table[friends[i]]
        h = h * state_ratio[state[i]]
        if has_ratio:
            h = h * np.float64(hazard_ratio[i])
        out[k] = h
    return out


@jit
def need_now(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap):
    """Latent demand of ``idx`` today (see ``sim.behaviour.need_now``)."""
    n = idx.size
    out = np.empty(n, dtype=np.float64)
    for k in range(n):
        i = idx[k]
        x = np.float64(need[i]) + need_rate[segment[i]] * state_need_ratio[state[i]] * np.float64(day - need_day[i])
        out[k] = min(need_cap, x)
    return out


@jit
def age_users(alive, day, segment, satisfaction, base_sat, reversion, last_visit, state, dormant_after, dormant):
    """The start of the retention stage for users ``alive``: satisfaction reverts towards its segment
    baseline, and users idle ``dormant_after`` days become ``dormant``. Returns the idle days."""
    n = alive.size
    idle = np.empty(n, dtype=np.int64)
    for k in range(n):
        i = alive[k]
        s = np.float64(satisfaction[i])
        satisfaction[i] = np.float32(s + (base_sat[segment[i]] - s) * reversion)
        d = day - last_visit[i]
        idle[k] = d
        if d >= dormant_after and state[i] != dormant:
            state[i] = dormant
    return idle


@jit
def loyalty_transitions(users, state, orders, satisfaction, min_orders, min_sat32, down_sat32, active, loyal):
    """Active users with enough orders and satisfaction become loyal; loyal users whose satisfaction
    fell below ``down_sat32`` become active again (thresholds in float32, as numpy compares them with
    the float32 column)."""
    for k in range(users.size):
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
def join_columns(idx, channel, sender, day, initial_need, friction, channel_frailty, active, state, joined_day,
                 channel_col, referrer, last_visit, visits, need, need_day, satisfaction, frailty):
    """The columns of people ``idx`` (distinct) who join today through ``channel`` from ``sender``:
    active, joined and visited today, the initial need, onboarding friction off their satisfaction
    (clipped to [0, 1], in float32 as numpy computes it) and their frailty times the channel's
    (float32). A kernel because numpy takes a scatter (and a gather) per column."""
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
    Returns the new index and how many never joined before.

    A kernel because numpy takes a sort, a searchsorted and ``np.insert`` (tens of microseconds of
    Python for a few hundred people); this is a sort of the few and one merge."""
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
    ``[lo, hi]``): one pass over the index (``np.delete`` of their positions in numpy)."""
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
def add_clipped(idx, delta, column, lo, hi):
    """:func:`add_at`, then ``column[idx] = clip(column[idx], lo, hi)``."""
    add_at(column, idx, delta)
    for k in range(idx.size):
        i = idx[k]
        column[i] = min(max(column[i], lo), hi)


@jit
def order_categories(buyers, u, taste_u, taste_strength, other, favourite, recommended, follow):
    """Category of each order: the recommended one where there is one (``>= 0``) and ``u < follow``,
    else the buyer's favourite where ``taste_u < taste_strength``, else ``other`` (drawn by
    popularity). ``recommended`` empty: no recommendations. One pass instead of a where, a cast
    and a masked assignment."""
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


# ------------------------------------------------------------------------------ graph generators
@jit
def attachment_nodes(ptr, m):
    """Batagelj-Brandes preferential attachment: the node at every slot of the edge-endpoint array.

    Slot ``2s`` holds the new node of edge ``s`` (``s // m``); slot ``2s + 1`` copies the node at slot
    ``ptr[s] <= 2s``, already known when slots are filled in order (numpy needs rounds of pointer
    jumping for the same result)."""
    out = np.empty(2 * ptr.size, dtype=np.int64)
    for s in range(ptr.size):
        out[2 * s] = s // m
        out[2 * s + 1] = out[ptr[s]]
    return out


@jit
def sharing_propensity(idx, day, joined_day, satisfaction, novelty_table):
    """How much users ``idx`` share today (see ``sim.behaviour.sharing_propensity``): twice their
    satisfaction, clipped to [0, 2] in float32 as numpy computes it, times the novelty of their age."""
    out = np.empty(idx.size, dtype=np.float64)
    for k in range(idx.size):
        i = idx[k]
        s = min(max(np.float32(2.0) * satisfaction[i], np.float32(0.0)), np.float32(2.0))
        out[k] = np.float64(s) * novelty_table[day - joined_day[i]]
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


@jit
def add_need(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap, amount):
    """``need[idx] = min(need_cap, need_now + amount)`` and ``need_day[idx] = day`` (see
    ``sim.behaviour.add_need``): every new value from the stocks before any write, as numpy's
    fancy assignment does (``amount`` has one entry per index, or one for all)."""
    new = need_now(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap)
    one = amount.size == 1
    for k in range(idx.size):
        new[k] = min(need_cap, new[k] + (amount[0] if one else amount[k]))
    for k in range(idx.size):
        need[idx[k]] = np.float32(new[k])
        need_day[idx[k]] = day


@jit
def decide_purchases(v, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap, relevance, discount,
                     deal_sensitivity, conversion, u):
    """The core purchase decision of today's visitors ``v``: latent demand brought up to date, the
    chance to buy ``1 - exp(-conversion x need x relevance x deal factor)`` (see
    ``sim.behaviour.purchase_probability``; an empty ``relevance`` or ``discount`` means 1 or 0 for
    all), a purchase where ``u`` is below it, and the demand stock after it (one order less, at
    least 0). Returns who bought (one flag per visitor)."""
    n = v.size
    now = need_now(v, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap)
    buy = np.empty(n, dtype=np.bool_)
    has_rel, has_disc = relevance.size > 0, discount.size > 0
    for k in range(n):
        i = v[k]
        x = conversion * now[k]
        if has_rel:
            x = x * relevance[k]
        if has_disc:
            x = x * (1.0 + deal_sensitivity[segment[i]] * discount[k])
        b = u[k] < -np.expm1(-x)
        buy[k] = b
        need[i] = np.float32(max(now[k] - 1.0, 0.0) if b else now[k])
        need_day[i] = day
    return buy


# ------------------------------------------------------------------------------ requests to friends
@jit
def note_asks(idx, day, asked, asked_day, halving_table, satisfaction, tolerance, annoyance, count):
    """Record one request per entry of ``idx`` (see ``sim.behaviour.note_asks``): each person's recent
    requests decay by ``halving_table[days since]`` and grow by the requests of today; those beyond
    ``tolerance`` cost ``annoyance`` satisfaction each (kept within [0, 1]). ``count`` is scratch of
    one int32 per person, all 0, and is left so. Returns the distinct people, in order of first
    request (numpy needs a sort to count repeats)."""
    people = np.empty(idx.size, dtype=np.int64)
    m = 0
    for i in idx:
        if count[i] == 0:
            people[m] = i
            m += 1
        count[i] += 1
    for k in range(m):
        p = people[k]
        before = np.float64(asked[p]) * halving_table[day - asked_day[p]]
        after = before + count[p]
        asked[p] = np.float32(after)
        asked_day[p] = day
        if annoyance != 0.0:
            excess = max(after - max(before, tolerance), 0.0)
            s = np.float64(satisfaction[p]) - annoyance * excess
            satisfaction[p] = np.float32(min(max(s, 0.0), 1.0))
        count[p] = 0
    return people[:m]



# ------------------------------------------------------------------------------ small helpers
@jit
def rank_within(keys):
    """0, 1, 2, ... for successive occurrences of each key, in array order (see
    ``sim.behaviour.rank_within``): one stable sort and one pass, in a single call (numpy needs some
    ten calls, which dominate for the few hundred keys mechanisms rank a day)."""
    n = keys.size
    order = np.argsort(keys, kind="mergesort")  # stable
    rank = np.empty(n, dtype=np.int64)
    r = 0
    for j in range(n):
        i = order[j]
        r = r + 1 if j > 0 and keys[i] == keys[order[j - 1]] else 0
        rank[i] = r
    return rank


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


@jit
def drawn_to_deal(v, u, prune, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap, deal, rate,
                  pull):
    """The visitors ``v`` drawn to a deal: ``u < min(rate x deal[segment] x min(need, 1) x pull, 1)``.
    Group buying passes its ``open_rate`` and pull; friend assists (``sim.mechanisms.assist``) their
    start rate times the discount, and a pull of 1 (exact).

    Speed: with ``prune`` (the caller's promise that ``rate``, ``deal`` and ``pull`` are not
    negative) the latent demand is brought up to date (``need_now``, four cache misses a
    person) only where ``u`` is below ``rate x deal[segment] x pull``. That is an upper bound of the
    chance in floating point too (rounding is monotone and ``min(need, 1) <= 1``), so the same
    people are drawn; ``rate x max(deal) x pull`` bounds it in turn, a test without a gather.

    A kernel because numpy needs a filter, the demand, two gathers, three products and two more
    filters."""
    top = rate * deal.max() * pull
    idx = np.empty(v.size, v.dtype)
    pos = np.empty(v.size, np.int64)
    m = 0
    for k in range(v.size):
        if not prune or (u[k] < top and u[k] < rate * deal[segment[v[k]]] * pull):
            idx[m] = v[k]
            pos[m] = k
            m += 1
    idx, pos = idx[:m], pos[:m]
    now = need_now(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap)
    out = np.empty(m, v.dtype)
    n = 0
    for k in range(m):
        p = min(rate * deal[segment[idx[k]]] * min(now[k], 1.0) * pull, 1.0)
        if u[pos[k]] < p:
            out[n] = idx[k]
            n += 1
    return out[:n]


@jit
def consume_need(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap):
    """One unit of latent demand of each of ``idx`` (distinct people) used up by an order outside the
    core purchase (``sim.behaviour.consume_need``); numpy needs the demand, a subtraction, a maximum
    and two scatters."""
    now = need_now(idx, day, segment, state, need, need_day, need_rate, state_need_ratio, need_cap)
    for k in range(idx.size):
        need[idx[k]] = np.float32(max(now[k] - 1.0, 0.0))
        need_day[idx[k]] = day


# ------------------------------------------------------------------------------ members of a set
@jit
def positions_in(v, people, mark):
    """The positions in ``v`` of the entries that are among ``people`` (repeats allowed), in order:
    ``np.flatnonzero(np.isin(v, people))`` by marking ``people`` in ``mark`` (scratch of one bool per
    person, all False, and left so) and one pass over ``v`` reading the dense marks, instead of a
    gather from a wider column or isin's sort (the posts distribution's visitors saw, the campaign
    targets among promotions' new users)."""
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
