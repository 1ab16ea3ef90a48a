"""Group buying (拼团): a team of ``team_size`` buys together at a discount, or nobody buys.

What it models (seed document 004, the share-and-group-buy model of Pinduoduo): a visitor with
demand opens a team — more readily the larger the discount and the more deal-sensitive their
segment — and shares its link with friends every day while it is open. Friends who are users join
with the shared purchase decision (their need, the discount through their deal sensitivity, and
their fatigue with requests); friends who are not yet users may join the platform to join the team,
through the ordinary exposure and adoption machinery with the initiator as sender (channel
``group_buy``: saturation, same-sender fading and complex contagion all apply). A team that fills
within ``window_days`` buys: every member's order is booked at the discounted price (order source
``group_buy``) and the platform pays ``platform_share`` of the discount (the merchant the rest). A team that does not fill is
refunded: no GMV, and every member is disappointed (satisfaction falls by ``failure_shock``).

Trade-offs: a larger team reaches more friends and brings more new users per team, but fails more
often; a larger discount fills teams faster and converts more, at a higher subsidy.

Teams are arrays (one row per open team, and a team id per person), not objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim import kernels
from sim.compiled import jit
from sim.kernels import free_of, links_sent, links_to_send, person_bits, search_sorted
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import ACTIVE, AWARE, LOYAL
from sim.vocabulary import CHANNELS

GROUP_BUY = CHANNELS.index("group_buy")
NO_TEAM = -1
_SEEN = -2  # inside _place only: a person whose first request today was turned down


@dataclass(frozen=True)
class GroupBuyConfig(MechanismConfig):
    team_size: int = param(3, lo=2, hi=50, unit="people", doc="members a team needs, the initiator included")
    discount: float = param(0.3, lo=0, hi=0.95, unit="fraction of price", doc="price cut a filled team gets")
    platform_share: float = param(0.5, lo=0, hi=1, unit="fraction of the discount", doc="share of the team discount the platform funds; the merchant funds the rest, a price cut for volume (judgement: Pinduoduo's group prices are mostly merchants' own, with platform subsidies on promoted items)")
    window_days: int = param(1, lo=1, hi=30, unit="days", doc="a team opened on day d must fill by the end of day d + window_days, or it fails")
    open_rate: float = param(0.3, lo=0, hi=1, unit="probability per visit", doc="chance a visitor with a full unit of need and average deal sensitivity opens a team, at a saturating discount")
    discount_half: float = param(0.2, lo=0, lo_open=True, hi=1, unit="fraction of price", doc="discount at which the pull of a team (opening and joining) is half its maximum")
    shares_per_day: float = param(3.0, lo=0, hi=100, unit="links per missing member per day", doc="links an open team's initiator of average sharing propensity sends per day for each place still open")
    click_rate: float = param(0.5, lo=0, hi=1, unit="probability", doc="chance a friend who is a user opens a team link (before fatigue)")
    public_join: float = param(0.6, lo=0, hi=1, unit="probability", doc="chance someone drawn to a group deal first looks for an open team for the same item (any stranger's) before opening one")
    newcomer_conversion: float = param(0.5, lo=0, hi=1, unit="probability", doc="chance a team link makes a non-user of deal sensitivity 1 join the platform to join the team, at a saturating discount (x (1 + deal sensitivity) / 2 otherwise). A team link is an invitation that carries its own invitee reward, the item at the team price: at a saturating discount it converts as a referral invitation with a saturating invitee reward, referral.conversion x (1 + referral.invitee_uplift) = 0.2 x 2.5 (judgement, anchored on those defaults; was 0.2, which made every link a weaker invitation that still counted in full towards the receiver's saturation)")
    failure_shock: float = param(0.05, lo=0, hi=1, unit="satisfaction", doc="satisfaction each member of a failed team loses")


@register
class GroupBuy(Mechanism):
    name = "group_buy"
    Config = GroupBuyConfig
    columns = ("group_buy_teams_opened", "group_buy_teams_filled", "group_buy_teams_failed", "group_buy_joins",
               "group_buy_links_sent", "group_buy_links_to_non_users", "group_buy_links_to_asked", "group_buy_subsidy_rmb")
    accounts = {"group_buy_subsidy": "incentive"}
    funding = {"group_buy_subsidy": "platform_share"}
    channels = ("group_buy",)

    def setup(self, model) -> None:
        pop = model.pop
        self.team = pop.add_column("group_buy_team", np.int64, NO_TEAM)  # the open team a person is in
        self.bits = person_bits(pop.n)
        bh.ensure_ask_memory(pop)
        # One row per open team; ids are never reused, and row r holds team id self.ids[r].
        self.ids = np.zeros(0, np.int64)
        self.initiator = np.zeros(0, np.int64)
        self.deadline = np.zeros(0, np.int32)
        self.members = np.zeros(0, np.int32)
        self.category = np.zeros(0, np.int64)
        self.price = np.zeros(0)
        self.m_person = np.zeros(0, np.int64)  # one row per member of an open team
        self.m_team = np.zeros(0, np.int64)
        self.next_id = 0
        self.pull = bh.incentive_response(self.config.discount, self.config.discount_half) / bh.incentive_response(1.0, self.config.discount_half)

    # ------------------------------------------------------------------ team table
    def _enrol(self, people: np.ndarray, team_ids: np.ndarray, set_team: bool = True) -> None:
        if set_team:
            self.team[people] = team_ids
        self.m_person = np.concatenate([self.m_person, people.astype(np.int64)])
        self.m_team = np.concatenate([self.m_team, team_ids])

    def _close(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop the teams at ``rows`` (ascending, distinct) and free their members; returns the
        members (in the order of the member table) and the row each was in (a row of the table
        before the teams were dropped: the columns kept before the call still hold them)."""
        members, row_of, self.m_person, self.m_team = _members(rows, self.ids, self.m_person, self.m_team, self.team)
        self.ids, self.initiator, self.deadline, self.members, self.category, self.price = _drop_rows(
            rows, self.ids, self.initiator, self.deadline, self.members, self.category, self.price)
        return members, row_of

    # ------------------------------------------------------------------ daily hooks
    def adoption(self, model) -> None:
        """Non-users who joined the platform through a team link join that team if it is open."""
        pop, today = model.pop, model.today
        new = today.new_users[pop.channel[today.new_users] == GROUP_BUY]
        if new.size == 0:
            return
        today.count("invites_accepted", new.size)  # a team link is an invitation (K-factor)
        team = self.team[pop.referrer[new]]
        self._add_members(model, new[team >= 0], team[team >= 0], self.rng(model))

    def share(self, model) -> None:
        rng = self.rng(model)
        self._open(model, rng)
        self._send_links(model, rng)

    def settle(self, model) -> None:
        """Teams whose window ends today without filling fail: refunded, members disappointed."""
        rows = np.flatnonzero(self.deadline <= model.day)
        if rows.size == 0:
            return
        members, _ = self._close(rows)
        bh.nudge_satisfaction(model.pop, members, -self.config.failure_shock)  # (distinct people)
        model.today.count("group_buy_teams_failed", rows.size)

    # ------------------------------------------------------------------ steps
    def _open(self, model, rng) -> None:
        """Visitors drawn to a group deal join an open team for their item, or open their own."""
        c, pop, today = self.config, model.pop, model.today
        v = free_of(today.visitors, self.m_person, self.bits)  # (a person in a team is in the member table)
        u = rng.random(v.size)
        deal = pop.seg["deal_sensitivity"]
        prune = bool(deal.min() >= 0 and self.pull >= 0)  # (see bh.drawn_to_deal)
        purchase = model.cfg.behaviour.purchase
        keen = bh.drawn_to_deal(v, u, prune, model.day, bh.demand(pop, purchase), deal, c.open_rate, float(self.pull))
        if keen.size == 0:
            return
        category = model.choose_category(keen, rng)
        looks = rng.random(keen.size) < c.public_join
        joined = np.zeros(keen.size, dtype=bool)
        joined[looks] = self._join_public(model, keen[looks], category[looks], rng)
        heads, category = keen[~joined], category[~joined]
        n = heads.size
        if n == 0:
            return
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        self.ids = np.concatenate([self.ids, ids])
        self.initiator = np.concatenate([self.initiator, heads.astype(np.int64)])
        self.deadline = np.concatenate([self.deadline, np.full(n, model.day + c.window_days, np.int32)])
        self.members = np.concatenate([self.members, np.ones(n, np.int32)])
        self.category = np.concatenate([self.category, category])
        self.price = np.concatenate([self.price, model.list_price(heads, category, rng)])
        self._enrol(heads, ids)
        today.count("group_buy_teams_opened", n)

    def _join_public(self, model, people: np.ndarray, category: np.ndarray, rng) -> np.ndarray:
        """People who look at the open teams for their item join one at random if a place is left
        (the 'join a team in progress' list); returns which of them joined."""
        joined = np.zeros(people.size, dtype=bool)
        if people.size == 0 or self.ids.size == 0:
            return joined
        # Open teams with places, grouped by category: a random one of the person's category.
        order, start, count, n_has = _public_teams(self.members, self.config.team_size, self.category, category)
        idx, rows = _pick_public(order, start, count, rng.random(n_has))
        if idx.size == 0:
            return joined
        joined[idx] = self._add_members(model, people[idx], self.ids[rows], rng)
        return joined

    def _send_links(self, model, rng) -> None:
        """Each open team's initiator shares links to random friends, more while more places are open."""
        c, pop, today, day = self.config, model.pop, model.today, model.day
        if self.ids.size == 0:
            return
        social = model.cfg.behaviour.social
        missing = c.team_size - self.members
        keen = bh.sharing_propensity(pop, self.initiator, day, social)  # the satisfied and the new share more
        rows, sender = links_to_send(c.shares_per_day * missing * keen, rng.random(self.ids.size), self.initiator)
        rows, target, edge = links_sent(rows, *model.graph.sample_neighbours(sender, rng))
        today.count("group_buy_links_sent", target.size)
        if target.size == 0:
            return
        recent = bh.recent_asks(pop, target, day, social)
        fatigue = bh.ask_response(recent, social)
        # (diagnostics: links to people already asked up to their tolerance, who are annoyed by one more)
        today.count("group_buy_links_to_asked", int(np.count_nonzero(recent >= social.ask_tolerance)))
        bh.note_asks(pop, target, day, social)
        # Friends not yet on the platform: a chance to join it (evaluated tomorrow) and then the team.
        # Friends on the platform (active or loyal, in no team) join now if the deal meets their need.
        purchase = model.cfg.behaviour.purchase
        new_target, p_new, sender, new_edge, target, rows, fatigue, deal = _link_outcomes(
            (target, rows, edge, fatigue), (self.team, self.initiator), (pop.segment, pop.state, pop.seg["deal_sensitivity"]),
            c.newcomer_conversion * self.pull, c.discount)
        need = bh.need_now(pop, target, day, purchase)
        today.next_exposures.add(new_target, GROUP_BUY, p_new, sender, new_edge)
        today.count("invites_sent", new_target.size)
        today.count("group_buy_links_to_non_users", new_target.size)
        p = c.click_rate * fatigue * bh.purchase_probability(need, 1.0, deal, purchase.conversion)
        join = rng.random(target.size) < p
        self._add_members(model, target[join], self.ids[rows[join]], rng)

    def _add_members(self, model, people: np.ndarray, team_ids: np.ndarray, rng) -> np.ndarray:
        """Put ``people`` into teams (first come, while places are left; one team per person); full
        teams buy. Returns which entries of ``people`` were placed."""
        placed = np.zeros(people.size, dtype=bool)
        if people.size == 0:
            return placed
        rows, full, seen = np.empty(people.size, np.int64), np.empty(people.size, np.int64), np.empty(people.size, np.int64)
        joins, filled = _place(people, team_ids, self.ids, self.members, self.team, self.config.team_size, placed, rows, full, seen)
        self._enrol(people[placed], self.ids[rows[:joins]], set_team=False)
        model.today.count("group_buy_joins", joins)
        if filled:
            self._buy(model, np.sort(full[:filled]), rng)
        return placed

    def _buy(self, model, rows: np.ndarray, rng) -> None:
        """Full teams buy: every member orders the team's item at the discounted price."""
        c, pop, day = self.config, model.pop, model.day
        price, category = self.price, self.category  # (the columns before the teams are dropped)
        members, row_of = self._close(rows)
        price, category = price[row_of], category[row_of]
        paid = price * (1.0 - c.discount)
        bh.consume_need(pop, members, day, model.cfg.behaviour.purchase)
        model.book_orders(members, paid, category, "group_buy", rng)
        discount = float((price * c.discount).sum())  # the platform's share is its cost, the rest the merchants'
        if discount > 0:
            model.economics.book("group_buy_subsidy", discount)
            if c.platform_share:
                model.today.count("group_buy_subsidy_rmb", discount * c.platform_share)
        model.today.count("group_buy_teams_filled", rows.size)

# ====================================================================================== compiled passes
@jit
def _place(people, team_ids, ids, members, team, team_size, placed, rows, full, seen):
    """Put ``people[i]`` into the open team ``team_ids[i]``, in array order: only a person's first
    entry counts, only someone in no team (``team == NO_TEAM``) joins, and only while the team has
    places left. Updates ``members`` (per row of ``ids``) and ``team`` (per person) in place;
    marks ``placed[i]``; writes the rows joined, in order, to ``rows`` and the rows that became
    full to ``full``. Returns (joins, teams filled). First come, first served: a person's turned-down
    first entry is marked in ``team`` (``_SEEN``, listed in ``seen``) for the pass and cleared at its end."""
    joins = 0
    filled = 0
    n_seen = 0
    for i in range(people.size):
        p = people[i]
        if team[p] != NO_TEAM:  # in a team already, or an entry after the person's first
            continue
        r = search_sorted(ids, team_ids[i])
        if r < ids.size and ids[r] == team_ids[i] and members[r] < team_size:
            members[r] += 1
            team[p] = team_ids[i]
            placed[i] = True
            rows[joins] = r
            joins += 1
            if members[r] == team_size:
                full[filled] = r
                filled += 1
        else:
            team[p] = _SEEN
            seen[n_seen] = p
            n_seen += 1
    for k in range(n_seen):
        team[seen[k]] = NO_TEAM
    return joins, filled


@jit
def _link_outcomes(links, teams, people, newcomer_pull, discount):
    """What today's team ``links`` (target, team row, edge, fatigue) do, given the ``teams`` (each
    person's team, each row's initiator) and the ``people`` (segment, state, deal sensitivity by
    segment):

    - to friends not yet on the platform (state up to aware): an exposure (receiver, probability
      ``min(newcomer_pull x (1 + deal[segment]) / 2 x fatigue, 1)``, sender, edge);
    - to active and loyal friends in no team: a chance to join now, for which the kernel gives
      their target, team row, fatigue and ``bh.deal_factor`` (the caller
      brings their latent demand up to date, and takes ``expm1`` in numpy: LLVM's may differ in the
      last bit)."""
    target, rows, edge, fatigue = links
    team, initiator = teams
    segment, state, deal = people
    n = target.size
    new_target = np.empty(n, np.int64)
    new_p = np.empty(n, np.float64)
    new_sender = np.empty(n, np.int64)
    new_edge = np.empty(n, np.int64)
    user = np.empty(n, np.int64)
    a = 0
    b = 0
    for k in range(n):
        t = target[k]
        s = state[t]
        if s <= AWARE:
            new_target[a] = t
            new_p[a] = min(newcomer_pull * (1.0 + deal[segment[t]]) / 2.0 * fatigue[k], 1.0)
            new_sender[a] = initiator[rows[k]]
            new_edge[a] = edge[k]
            a += 1
        elif (s == ACTIVE or s == LOYAL) and team[t] == NO_TEAM:
            user[b] = k
            b += 1
    user = user[:b]
    user_target = np.empty(b, np.int64)
    user_rows = np.empty(b, np.int64)
    user_fatigue = np.empty(b, np.float64)
    factor = np.empty(b, np.float64)
    for k in range(b):
        t = target[user[k]]
        user_target[k] = t
        user_rows[k] = rows[user[k]]
        user_fatigue[k] = fatigue[user[k]]
        factor[k] = bh.deal_factor(deal[segment[t]], discount)
    return new_target[:a], new_p[:a], new_sender[:a], new_edge[:a], user_target, user_rows, user_fatigue, factor


@jit
def _members(rows, ids, m_person, m_team, team):
    """The members of the teams at ``rows`` (rows of ``ids``) in the order of the member table, each
    one's row, and the member table without them (their ``team`` is reset: they leave)."""
    chosen = np.zeros(ids.size, np.bool_)
    for r in rows:
        chosen[r] = True
    n = m_person.size
    who = np.empty(n, np.int64)
    row_of = np.empty(n, np.int64)
    gone = np.empty(n, np.bool_)
    m = 0
    for j in range(n):
        r = search_sorted(ids, m_team[j])
        gone[j] = chosen[r]
        if gone[j]:
            who[m] = m_person[j]
            row_of[m] = r
            m += 1
    if m == 0:
        return who[:m], row_of[:m], m_person, m_team
    keep_person = np.empty(n - m, np.int64)
    keep_team = np.empty(n - m, np.int64)
    k = 0
    for j in range(n):
        if gone[j]:
            team[m_person[j]] = NO_TEAM
        else:
            keep_person[k] = m_person[j]
            keep_team[k] = m_team[j]
            k += 1
    return who[:m], row_of[:m], keep_person, keep_team


@jit
def _public_teams(members, team_size, category, wanted):
    """The open teams with a place left (rows where ``members < team_size``), in order of category
    and then row (a stable counting sort), and for each entry of ``wanted`` (a category) where that
    category's teams start in that order and how many there are. Returns (order, start, count,
    entries with at least one team)."""
    ncat = 0
    for r in range(members.size):
        if members[r] < team_size:
            ncat = max(ncat, category[r] + 1)
    begin = np.zeros(ncat + 1, np.int64)
    for r in range(members.size):
        if members[r] < team_size:
            begin[category[r] + 1] += 1
    for c in range(ncat):
        begin[c + 1] += begin[c]
    order = np.empty(begin[ncat], np.int64)
    fill = begin[:ncat].copy()
    for r in range(members.size):
        if members[r] < team_size:
            order[fill[category[r]]] = r
            fill[category[r]] += 1
    start = np.zeros(wanted.size, np.int64)
    count = np.zeros(wanted.size, np.int64)
    n_has = 0
    for k in range(wanted.size):
        c = wanted[k]
        if 0 <= c < ncat and begin[c + 1] > begin[c]:
            start[k] = begin[c]
            count[k] = begin[c + 1] - begin[c]
            n_has += 1
    return order, start, count, n_has


@jit
def _pick_public(order, start, count, u):
    """For each entry with teams (``count > 0``, in order): its position and the row of a team drawn
    at random among them with the next uniform of ``u`` (``order[start + floor(u x count)]``)."""
    idx = np.empty(u.size, np.int64)
    rows = np.empty(u.size, np.int64)
    j = 0
    for k in range(count.size):
        if count[k] > 0:
            idx[j] = k
            rows[j] = order[start[k] + np.int64(u[j] * count[k])]
            j += 1
    return idx, rows


@jit
def _drop_rows(rows, ids, initiator, deadline, members, category, price):
    """The columns of the team table without the rows ``rows`` (ascending, distinct), in one pass
    instead of a mask and a filter per column."""
    n = ids.size - rows.size
    out_ids, out_initiator = np.empty(n, ids.dtype), np.empty(n, initiator.dtype)
    out_deadline, out_members = np.empty(n, deadline.dtype), np.empty(n, members.dtype)
    out_category, out_price = np.empty(n, category.dtype), np.empty(n, price.dtype)
    j = 0
    k = 0
    for r in range(ids.size):
        if j < rows.size and rows[j] == r:
            j += 1
            continue
        out_ids[k], out_initiator[k], out_deadline[k] = ids[r], initiator[r], deadline[r]
        out_members[k], out_category[k], out_price[k] = members[r], category[r], price[r]
        k += 1
    return out_ids, out_initiator, out_deadline, out_members, out_category, out_price
