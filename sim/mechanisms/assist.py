"""Friend assist (助力 / 砍价): a user needs ``clicks_needed`` friends to click to unlock a deal.

What it models (seed documents 000 and 004: 砍价 and 助力 as fission tools): a visitor with demand
starts a request — more readily the bigger the prize and the more deal-sensitive their segment —
and asks friends for a click each day until the request is unlocked or expires after
``window_days``. Friends on the platform click with ``click_rate``; friends who are not users can
only click by joining, so for them the request is an invitation to the platform (channel ``assist``,
through the shared exposure and adoption machinery with the requester as sender). An unlocked
request becomes an order at ``discount`` off (1.0: the item is free), paid by the platform; an
expired one disappoints the requester.

Being asked wears friends out: every request a person receives is remembered (the shared memory of
requests in ``sim.behaviour``, which group-buy links also fill), their response to the next one
fades with the requests they received lately, and beyond a tolerance each request costs them
satisfaction. Asking too often therefore annoys friends and spoils later requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.compiled import jit
from sim.kernels import free_of, links_sent, links_to_send, person_bits, search_sorted
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import ACTIVE, AWARE, DORMANT
from sim.vocabulary import CHANNELS

ASSIST = CHANNELS.index("assist")
NONE = -1


@dataclass(frozen=True)
class AssistConfig(MechanismConfig):
    clicks_needed: int = param(3, lo=1, hi=1000, unit="clicks", doc="friends' clicks that unlock the deal")
    discount: float = param(0.5, lo=0, hi=1, unit="fraction of price", doc="price cut once unlocked (1: the item is free, 砍价免费拿)")
    window_days: int = param(2, lo=1, hi=30, unit="days", doc="a request started on day d expires at the end of day d + window_days")
    start_rate: float = param(0.03, lo=0, hi=1, unit="probability per visit", doc="chance a visitor with a full unit of need and average deal sensitivity starts a request, for a free item")
    asks_per_click: float = param(2.0, lo=0, hi=100, unit="asks per missing click per day", doc="friends a requester asks per day for each click still missing")
    click_rate: float = param(0.5, lo=0, hi=1, unit="probability", doc="chance a friend on the platform clicks a first request")
    newcomer_conversion: float = param(0.1, lo=0, hi=1, unit="probability", doc="chance a request makes a non-user join the platform to click")
    failure_shock: float = param(0.03, lo=0, hi=1, unit="satisfaction", doc="satisfaction a requester loses when the request expires")
    platform_share: float = param(1.0, lo=0, hi=1, unit="fraction of the subsidy", doc="share of the unlocked discount the platform funds (1: all; Pinduoduo pays for its 砍价免费拿 items itself, seed documents; the merchants fund the rest)")


@register
class Assist(Mechanism):
    name = "assist"
    Config = AssistConfig
    columns = ("assist_requests", "assist_asks", "assist_clicks", "assist_unlocked", "assist_expired", "assist_subsidy_rmb")
    accounts = {"assist_subsidy": "incentive"}
    funding = {"assist_subsidy": "platform_share"}
    channels = ("assist",)

    def setup(self, model) -> None:
        pop = model.pop
        self.request = pop.add_column("assist_request", np.int64, NONE)  # the open request of a requester
        self.bits = person_bits(pop.n)
        bh.ensure_ask_memory(pop)
        # One row per open request; ids increase, so a request's row is a binary search away.
        self.ids = np.zeros(0, np.int64)
        self.requester = np.zeros(0, np.int64)
        self.deadline = np.zeros(0, np.int32)
        self.clicks = np.zeros(0, np.int32)
        self.next_id = 0

    def _close(self, rows: np.ndarray) -> None:
        self.request[self.requester[rows]] = NONE
        keep = np.ones(self.ids.size, dtype=bool)
        keep[rows] = False
        for name in ("ids", "requester", "deadline", "clicks"):
            setattr(self, name, getattr(self, name)[keep])

    # ------------------------------------------------------------------ daily hooks
    def adoption(self, model) -> None:
        """Non-users who joined to help click for the request of the friend who asked them."""
        pop, today = model.pop, model.today
        new = today.new_users[pop.channel[today.new_users] == ASSIST]
        if new.size:
            today.count("invites_accepted", new.size)  # a request to a non-user is an invitation
            req = self.request[pop.referrer[new]]
            self._click(model, req[req >= 0])

    def share(self, model) -> None:
        rng = self.rng(model)
        self._start(model, rng)
        self._ask(model, rng)

    def settle(self, model) -> None:
        rows = np.flatnonzero(self.deadline <= model.day)
        if rows.size == 0:
            return
        bh.nudge_satisfaction(model.pop, self.requester[rows], -self.config.failure_shock)  # (distinct people)
        model.today.count("assist_expired", rows.size)
        self._close(rows)

    # ------------------------------------------------------------------ steps
    def _start(self, model, rng) -> None:
        c, pop, today = self.config, model.pop, model.today
        v = free_of(today.visitors, self.requester, self.bits)  # (who has an open request is a requester)
        u = rng.random(v.size)
        deal = pop.seg["deal_sensitivity"]
        purchase = model.cfg.behaviour.purchase
        prune = bool(deal.min() >= 0)  # (see bh.drawn_to_deal)
        who = bh.drawn_to_deal(v, u, prune, model.day, bh.demand(pop, purchase), deal, c.start_rate * c.discount, 1.0)
        n = who.size
        if n == 0:
            return
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        self.ids = np.concatenate([self.ids, ids])
        self.requester = np.concatenate([self.requester, who.astype(np.int64)])
        self.deadline = np.concatenate([self.deadline, np.full(n, model.day + c.window_days, np.int32)])
        self.clicks = np.concatenate([self.clicks, np.zeros(n, np.int32)])
        self.request[who] = ids
        today.count("assist_requests", n)

    def _ask(self, model, rng) -> None:
        c, pop, today, day = self.config, model.pop, model.today, model.day
        if self.ids.size == 0:
            return
        social = model.cfg.behaviour.social
        mean = c.asks_per_click * (c.clicks_needed - self.clicks)
        rows, asker = links_to_send(mean, rng.random(self.ids.size), self.requester)
        rows, target, edge = links_sent(rows, *model.graph.sample_neighbours(asker, rng))
        today.count("assist_asks", target.size)
        if target.size == 0:
            return
        fatigue = bh.ask_response(bh.recent_asks(pop, target, day, social), social)
        bh.note_asks(pop, target, day, social)
        new_target, p_new, sender, new_edge, rows, p = _ask_outcomes(target, rows, edge, fatigue, pop.state, self.requester,
                                                                     c.newcomer_conversion, c.click_rate)
        today.next_exposures.add(new_target, ASSIST, p_new, sender, new_edge)
        today.count("invites_sent", new_target.size)
        click = rng.random(p.size) < p
        self._click(model, self.ids[rows[click]])

    def _click(self, model, request_ids: np.ndarray) -> None:
        """Count clicks on open requests; requests that reach the goal are unlocked."""
        if request_ids.size == 0:
            return
        done = np.empty(request_ids.size, np.int64)
        live, n_done = _count_clicks(request_ids, self.ids, self.clicks, self.config.clicks_needed, done)
        model.today.count("assist_clicks", live)
        if n_done:
            self._unlock(model, np.sort(done[:n_done]))

    def _unlock(self, model, rows: np.ndarray) -> None:
        c, pop, day = self.config, model.pop, model.day
        rng = self.rng(model)
        who = self.requester[rows]
        category = model.choose_category(who, rng)
        price = model.list_price(who, category, rng)
        bh.consume_need(pop, who, day, model.cfg.behaviour.purchase)
        model.book_orders(who, price * (1.0 - c.discount), category, "assist", rng)
        subsidy = float((price * c.discount).sum())
        if subsidy > 0:
            model.economics.book("assist_subsidy", subsidy)
            model.today.count("assist_subsidy_rmb", subsidy)
        model.today.count("assist_unlocked", rows.size)
        self._close(rows)

# ====================================================================================== compiled passes
@jit
def _count_clicks(request_ids, ids, clicks, needed, done):
    """Add one click per entry of ``request_ids`` that is an open request (in ``ids``, ascending)
    to ``clicks`` (per row of ``ids``), in array order; the rows that reach ``needed`` go to
    ``done``. Returns (clicks counted, requests done).

    (An open request has fewer than ``needed`` clicks:
    one that reaches it is unlocked and closed at once, so each row is done once.)"""
    live = 0
    n_done = 0
    for i in range(request_ids.size):
        r = search_sorted(ids, request_ids[i])
        if r < ids.size and ids[r] == request_ids[i]:
            clicks[r] += 1
            live += 1
            if clicks[r] == needed:
                done[n_done] = r
                n_done += 1
    return live, n_done


@jit
def _ask_outcomes(target, rows, edge, fatigue, state, requester, newcomer_conversion, click_rate):
    """What today's asks do: to friends not yet on the platform (state up to aware), an exposure
    (receiver, probability ``newcomer_conversion x fatigue``, sender, edge); to users (active to
    dormant), a chance to click (their request's row and ``click_rate x fatigue``, halved for the
    dormant)."""
    n = target.size
    new_target = np.empty(n, np.int64)
    new_p = np.empty(n, np.float64)
    new_sender = np.empty(n, np.int64)
    new_edge = np.empty(n, np.int64)
    user_rows = np.empty(n, np.int64)
    user_p = np.empty(n, np.float64)
    a = 0
    b = 0
    for k in range(n):
        s = state[target[k]]
        if s <= AWARE:
            new_target[a] = target[k]
            new_p[a] = newcomer_conversion * fatigue[k]
            new_sender[a] = requester[rows[k]]
            new_edge[a] = edge[k]
            a += 1
        elif ACTIVE <= s <= DORMANT:
            user_rows[b] = rows[k]
            user_p[b] = click_rate * fatigue[k] * (0.5 if s == DORMANT else 1.0)
            b += 1
    return new_target[:a], new_p[:a], new_sender[:a], new_edge[:a], user_rows[:b], user_p[:b]
