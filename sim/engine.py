"""GrowthModel: the state, the random streams and the daily stage loop.

One ``step()`` is one day and runs the stages of DESIGN section 3 in a fixed order:
exposure -> adoption -> visit -> browse -> purchase -> share -> retention -> settle. The core work of
each stage is a short vectorised function here; the decision rules live in ``sim.behaviour`` and the
platform mechanisms hook the stages (see ``sim/mechanisms/base.py`` for where each hook runs).

Randomness: one ``SeedSequence`` per run; every subsystem draws from its own stream
(``sim.streams``), re-derived each day from (seed, stream name, day); the streams that build the
world (graph, people, catalogue, market) come from ``world_seed`` when it is set. Switching a mechanism on
therefore does not shift the draws of the others, and strategies compared with the same seed share
their base randomness (common random numbers): the same graph, the same people, the same daily
draws until their states diverge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sim import behaviour as bh
from sim import halves, kernels
from sim.config import SimConfig
from sim.diffusion import Diffusion
from sim.economics import Economics, settle_day
from sim.graph import build_graph, store
from sim.lazy_mesa import import_mesa
from sim.mechanisms import REGISTRY, STAGES
from sim.memory import check_memory
from sim.metrics import Recorder
from sim.population import Population, category_popularity
from sim.streams import Streams, choice_cdf, draw_choice
from sim.vocabulary import CHANNELS, ORDER_SOURCES, State

mesa = import_mesa()  # Mesa without the subpackages the engine never uses (sim.lazy_mesa)

ORGANIC = CHANNELS.index("organic")
EMPTY = np.zeros(0, dtype=np.int64)
SENDS_TOP = 250  # edge_sends is a saturating uint8 count
ORDER_COUNTERS = tuple(f"orders_{source}" for source in ORDER_SOURCES)  # today's counter of each order source
NO_OFFER = np.zeros(0)  # no relevance factors or discounts today (an argument of bh.decide_purchases)


class Exposures:
    """Exposure events collected for one day's adoption stage.

    Each event is one chance for ``receiver`` to join through ``channel`` with probability ``prob``.
    Social events have a ``sender`` (a user) and, on a stored graph, the ``edge`` they travelled; they
    are subject to saturation, same-sender fading and, under complex contagion, the threshold.

    The events are written into growing column buffers as they are added (speed: a day adds a few
    dozen batches, and one concatenation per column and a filled constant column per batch cost
    more than the copies); ``capacity`` is the room to start with (the engine passes yesterday's
    count).
    """

    COLUMNS = (np.int64, np.int8, np.float64, np.int64, np.int64)  # receiver, channel, prob, sender, edge

    def __init__(self, capacity: int = 1024):
        self._size = 0
        self._cols = tuple(np.empty(max(int(capacity), 16), dtype=dt) for dt in self.COLUMNS)

    def add(self, receiver: np.ndarray, channel: int, prob: np.ndarray | float,
            sender: np.ndarray | None = None, edge: np.ndarray | None = None) -> None:
        n = np.size(receiver)
        if n == 0:
            return
        a, b = self._size, self._size + n
        if b > self._cols[0].size:
            grown = []
            for col in self._cols:
                wider = np.empty(max(2 * col.size, b), dtype=col.dtype)
                wider[:a] = col[:a]
                grown.append(wider)
            self._cols = tuple(grown)
        r, c, p, s, e = self._cols
        r[a:b] = receiver
        c[a:b] = channel
        p[a:b] = prob  # one value for all, or one per event
        s[a:b] = -1 if sender is None else sender
        e[a:b] = -1 if edge is None else edge
        self._size = b

    def __len__(self) -> int:
        return self._size

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The events' receiver, channel, prob, sender and edge: views of the buffers, which the
        caller may change (the adoption stage compacts them in place)."""
        return tuple(col[: self._size] for col in self._cols)


@dataclass
class Today:
    """Scratch state of the current day, handed to mechanisms (reset every day)."""

    day: int
    n: int
    exposures: Exposures
    next_exposures: Exposures = field(default_factory=Exposures)
    new_users: np.ndarray = field(default_factory=lambda: EMPTY)
    visitors: np.ndarray = field(default_factory=lambda: EMPTY)
    relevance: np.ndarray | None = None  # per visitor: multiplies purchase intensity (browse stage)
    discount: np.ndarray | None = None  # per visitor: fraction off the price (browse stage)
    recommended: np.ndarray | None = None  # per visitor: a recommended category, or -1
    follow: np.ndarray | None = None  # per visitor: chance an order follows the recommendation
    order_source: np.ndarray | None = None  # per visitor: index into ORDER_SOURCES of what drove an order
    basket_factor: np.ndarray | None = None  # per visitor: multiplies the order value (topping up a basket)
    bought: np.ndarray = field(default_factory=lambda: EMPTY)  # positions (into visitors) of the core orders
    full_price: np.ndarray = field(default_factory=lambda: np.zeros(0))  # RMB per core order before discounts
    buyers: np.ndarray = field(default_factory=lambda: EMPTY)  # one entry per order (a person may repeat)
    basket: np.ndarray = field(default_factory=lambda: np.zeros(0))  # RMB per order, paid by the buyer
    order_category: np.ndarray = field(default_factory=lambda: EMPTY)
    core_orders: slice = field(default_factory=lambda: slice(0, 0))  # the core purchase's orders within buyers / basket
    core_positions: np.ndarray = field(default_factory=lambda: EMPTY)  # their buyers' positions in visitors
    counters: dict[str, float] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] | None = None  # the model's per-person scratch arrays, reused from day to day
    _visit_boost: np.ndarray | None = None
    _hazard_ratio: np.ndarray | None = None

    def count(self, name: str, value: float = 1.0) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + float(value)

    # Offers to today's visitors compose: discounts multiply their remaining prices, relevance
    # factors multiply, and the last mechanism to claim an order's source wins.
    def offer_discount(self, positions: np.ndarray, fraction: np.ndarray | float) -> np.ndarray:
        """Give visitors at ``positions`` (indices into ``visitors``) a discount off the price.

        Returns the share of the full price this offer pays (``fraction`` of what earlier offers left),
        so the offering mechanism can book its own subsidy with :meth:`subsidy`."""
        if self.discount is None:
            self.discount = np.zeros(self.visitors.size)
        fraction = np.asarray(fraction)
        left = 1.0 - self.discount[positions]  # (read once: repeated positions read the same value)
        share = left * fraction
        self.discount[positions] = 1.0 - left * (1.0 - fraction)
        if share.dtype == np.float64 and share.shape == np.shape(positions):
            return share  # (a fresh array already)
        return np.broadcast_to(share, np.shape(positions)).astype(np.float64)

    def enlarge_basket(self, positions: np.ndarray, factor: np.ndarray | float) -> None:
        """Multiply the order value of visitors at ``positions`` (e.g. topping up to a 满减 threshold)."""
        if self.basket_factor is None:
            self.basket_factor = np.ones(self.visitors.size)
        self.basket_factor[positions] *= factor

    def subsidy(self, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """After the purchase stage: which core orders used an offer, and what each cost (RMB).

        ``share`` is per visitor (0 where nothing was offered), as returned by :meth:`offer_discount`.
        Returns the positions (into ``visitors``) of the buyers who used the offer and the cost of each."""
        used = share[self.bought] > 0
        pos = self.bought[used]
        return pos, self.full_price[used] * share[pos]

    def boost_relevance(self, positions: np.ndarray | slice, factor: np.ndarray | float) -> None:
        """Multiply the purchase relevance of visitors at ``positions`` (``slice(None)``: all of them,
        without an index array as long as the visitors)."""
        if self.relevance is None:
            self.relevance = np.ones(self.visitors.size)
        self.relevance[positions] *= factor

    def recommend(self, positions: np.ndarray, category: np.ndarray, follow: np.ndarray | float) -> None:
        """Show visitors at ``positions`` a category; an order follows it with chance ``follow``."""
        if self.recommended is None:
            self.recommended = np.full(self.visitors.size, -1, dtype=np.int64)
            self.follow = np.zeros(self.visitors.size)
        self.recommended[positions] = category
        self.follow[positions] = follow

    def attribute(self, positions: np.ndarray, source: str) -> None:
        """Orders placed today by visitors at ``positions`` are credited to ``source``."""
        if self.order_source is None:
            self.order_source = np.zeros(self.visitors.size, dtype=np.int8)
        self.order_source[positions] = ORDER_SOURCES.index(source)

    @property
    def visit_boost(self) -> np.ndarray:
        """Today's additive visit log-odds per person (allocated on first use)."""
        if self._visit_boost is None:
            self._visit_boost = self._per_person("visit_boost", 0.0)
        return self._visit_boost

    @property
    def hazard_ratio(self) -> np.ndarray:
        """Today's multiplicative churn-hazard ratio per person (allocated on first use)."""
        if self._hazard_ratio is None:
            self._hazard_ratio = self._per_person("hazard_ratio", 1.0)
        return self._hazard_ratio

    def _per_person(self, name: str, value: float) -> np.ndarray:
        """A float32 array of ``value`` per person: the model's array of that name from an earlier
        day, filled again (a fresh array of a million people costs its page faults every day)."""
        buffers = {} if self.buffers is None else self.buffers
        array = buffers.get(name)
        if array is None:
            array = buffers[name] = np.empty(self.n, dtype=np.float32)
        array.fill(value)
        return array


@dataclass(frozen=True)
class Catalogue:
    categories: int
    popularity: np.ndarray
    price_level: np.ndarray  # mean 1 across categories


class GrowthModel(mesa.Model):
    """The growth simulation. Build it from a validated :class:`SimConfig`, then ``step()`` daily."""

    def __init__(self, cfg: SimConfig, graph=None):
        """``graph``: the graph :meth:`make_graph` gives for ``cfg``, when already built (experiments
        share one between strategies of the same replicate; graphs are never modified)."""
        # Refuse, before building anything, a run that will not fit in memory; a graph handed over or
        # kept from an earlier run on the same world is not generated (generating is the peak).
        check_memory(cfg, generated=graph is None and not store.kept(GrowthModel.graph_key(cfg)))
        halves.enabled()  # (and a bad SIM_THREADS in the environment)
        super().__init__(seed=cfg.seed)
        self.cfg = cfg
        self.streams = Streams(cfg.seed, cfg.world_seed)
        self.graph = graph if graph is not None else self.make_graph(cfg)
        if self.graph.n != cfg.population.size:  # an edge list sets the market size: resolve it
            cfg = self.cfg = replace(cfg, population=replace(cfg.population, size=self.graph.n))
        self.pop = Population(cfg, self.graph.n, self.streams.setup("population"))
        bh.settle_propensity(self.pop)
        bh.set_demand_growth(self.pop, cfg, cfg.horizon)
        self._entry_order, self._entry_bounds = self._market_entry(cfg)
        self.catalogue = self._catalogue(self.streams.setup("catalogue"))
        self._popularity_cdf = choice_cdf(self.catalogue.popularity)
        self.economics = Economics(cfg.horizon, cfg.platform)
        self.metrics = Recorder(self)
        self.edge_sends = np.zeros(self.graph.indices.size, dtype=np.uint8) if hasattr(self.graph, "indices") else None
        self.pop.max_friends = int(self.graph.degree.max(initial=0))  # bounds the friends lookup table
        self._best = np.full(self.graph.n, -1, dtype=np.int32)  # scratch of kernels.first_success
        self._mark = np.zeros(self.graph.n, dtype=bool)  # scratch of kernels.keep_first_accepted
        self.channel_frailty = np.ones(len(CHANNELS))  # churn-frailty multiplier by acquisition channel
        self.day = -1
        self.pending = Exposures()  # shares made yesterday, evaluated today
        self.today: Today | None = None  # the current day's scratch state (from the first step)
        self._buffers: dict[str, np.ndarray] = {}  # per-person arrays of a day, reused the next (Today.buffers)
        self.diffusion = Diffusion.build(cfg.diffusion, self)  # a classic diffusion model, or None
        self.mechanisms = [REGISTRY[name](mc) for name, mc in cfg.mechanisms.items() if mc.enabled]
        for m in self.mechanisms:
            for account, category in m.accounts.items():
                self.economics.declare(account, category, m.platform_share(account))
            for column in m.columns:
                self.metrics.declare(column)
            m.setup(self)
        self.hooks = {stage: [getattr(m, stage) for m in self.mechanisms if stage in m.stages()] for stage in STAGES}

    @staticmethod
    def make_graph(cfg: SimConfig, keep: bool = True):
        """The social graph of ``cfg``: it depends only on the graph settings, the size and the world
        seed (the seed unless ``world_seed`` is set). A large generated graph is kept on disk and read
        back by later runs on the same world (:mod:`sim.graph.store`); ``keep=False`` generates it
        and keeps nothing."""
        name = GrowthModel.graph_key(cfg) if keep else None
        graph = store.recall(name, cfg.population.size)
        if graph is None:
            graph = build_graph(cfg.graph, cfg.population.size, Streams(cfg.seed, cfg.world_seed).setup("graph"))
            store.remember(name, graph)
        return graph

    @staticmethod
    def graph_key(cfg: SimConfig) -> str | None:
        """The name the graph of ``cfg`` is kept under (:mod:`sim.graph.store`), or None when it is not kept."""
        return store.key(cfg.graph, cfg.population.size, Streams(cfg.seed, cfg.world_seed).world_seed)

    def get_mechanism(self, name: str):
        """The enabled mechanism ``name``, or None (mechanisms that cooperate look each other up)."""
        return next((m for m in self.mechanisms if m.name == name), None)

    def _catalogue(self, rng: np.random.Generator) -> Catalogue:
        c = self.cfg.catalogue
        level = np.exp(rng.normal(0.0, c.price_spread, c.categories))
        return Catalogue(c.categories, category_popularity(self.cfg), level / level.mean())

    # ================================================================== the daily stage loop
    def step(self) -> None:
        self.day += 1
        self.streams.new_day(self.day)
        self.economics.day = self.day
        room = len(self.today.exposures) if self.today is not None else 1024  # yesterday's count
        self.today = Today(self.day, self.pop.n, exposures=self.pending, next_exposures=Exposures(room), buffers=self._buffers)
        self.pending = self.today.next_exposures
        self._enter_market()
        if self.cfg.catalogue.breadth_growth:
            bh.follow_catalogue(self.pop, self.cfg, self.day)
        for stage in STAGES:
            getattr(self, f"_{stage}")()
        self.metrics.record(self)
        self.running = self.day + 1 < self.cfg.horizon

    def run(self) -> GrowthModel:
        while self.day + 1 < self.cfg.horizon:
            self.step()
        return self

    def _run_hooks(self, stage: str) -> None:
        for hook in self.hooks[stage]:
            hook(self)

    # ------------------------------------------------------------------ 1. exposure
    def _exposure(self) -> None:
        self._run_hooks("exposure")
        a = self.cfg.adoption
        rng = self.streams.today("exposure")
        if self.day == 0 and a.seed_fraction:
            k = bh.share_of(a.seed_fraction, self.market_size())
            # in a growing market, seeds only among the people already in it (the rest cannot join yet)
            seeds = self.sample_non_users(k, rng) if self.pop.outside else rng.choice(self.pop.n, size=k, replace=False)
            if a.seeding == "neighbourhood":  # the seeds and all their friends
                seeds = np.unique(np.concatenate([seeds, self.graph.neighbours_of(seeds)[1]]))
            self.today.exposures.add(seeds, ORGANIC, 1.0)
        if a.external_rate > 0:
            k = rng.binomial(self.pop.count_non_users(), a.external_rate)
            self.today.exposures.add(self.sample_non_users(k, rng), ORGANIC, a.external_conversion)

    def market_size(self) -> int:
        """People in the addressable market today: the base of every setting stated per 1,000 people
        or as a share of the market."""
        return self.pop.market_size()

    def _market_entry(self, cfg: SimConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A growing market (``population.entry``): each person's day of entry, from one uniform
        draw against the curve of the market's share (its own stream: the rest of the model draws
        the same either way). Returns the people in order of entry and, per day, where that day's
        entrants start in it; those entering after day 0 start outside the market."""
        points = cfg.population.entry
        if not points:
            return None, None
        days = np.arange(cfg.horizon, dtype=np.float64)
        share = np.interp(days, [p.day for p in points], [p.share for p in points])
        u = self.streams.setup("market").random(self.pop.n)
        entry_day = np.searchsorted(share, u, side="left")  # first day the share reaches u (horizon: never)
        order = np.argsort(entry_day, kind="stable")
        bounds = np.searchsorted(entry_day[order], np.arange(cfg.horizon + 1), side="left")
        self.pop.leave_market(order[bounds[1]:])
        return order, bounds

    def _enter_market(self) -> None:
        """Today's entrants to a growing market (``population.entry``) become reachable."""
        if self._entry_bounds is not None and 0 < self.day < self.cfg.horizon:
            lo, hi = self._entry_bounds[self.day], self._entry_bounds[self.day + 1]
            if hi > lo:
                self.pop.enter(self._entry_order[lo:hi])

    def sample_non_users(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` distinct non-users picked uniformly (rejection sampling, no full scan)."""
        pop = self.pop
        if k <= 0:
            return EMPTY
        frac = pop.count_non_users() / pop.n
        accept = pop.non_users_view()
        picked, m = np.empty(k, dtype=np.int64), 0
        for _ in range(8):
            draw = rng.integers(0, pop.n, size=int((k - m) / max(frac, 1e-3) * 1.3) + 8)
            m = kernels.keep_first_accepted(draw, accept, k, picked, m, self._mark)  # each person's first draw
            if m >= k:
                break
        picked = picked[:m]
        kernels.unmark(picked, self._mark)
        return picked

    # ------------------------------------------------------------------ 2. adoption
    def _adoption(self) -> None:
        pop, today, cfg = self.pop, self.today, self.cfg
        events = today.exposures.arrays()  # compacted in place
        m = kernels.keep_reachable(*events, (pop.state, pop.aware_day, pop.non_users_view()), self.day, (State.POTENTIAL, State.AWARE))
        receiver, channel, prob, sender, edge = (col[:m] for col in events)
        self._social_response(receiver, sender, edge, prob, cfg)  # prob (a fresh array) scaled in place
        u = self.streams.today("adoption").random(receiver.size)
        # Competing channels: of a person's successes the one with the smallest u / p (uniform given
        # success) wins.
        pick = kernels.first_success(receiver, u, prob, self._best)
        if pick.size:
            self._join(receiver[pick], channel[pick], sender[pick])
        if self.diffusion is not None:
            adopters = self.diffusion.activate(self)
            self._join(adopters, np.full(adopters.size, ORGANIC, dtype=np.int8), np.full(adopters.size, -1))
        self._run_hooks("adoption")

    def _social_response(self, receiver: np.ndarray, sender: np.ndarray, edge: np.ndarray, prob: np.ndarray,
                         cfg: SimConfig) -> None:
        """Saturation and same-sender fading of today's social events (``sender >= 0``), and under
        complex contagion the threshold: scales ``prob`` in place and updates the memories, in one
        pass in event order (``sim.behaviour.social_events``)."""
        pop, social = self.pop, cfg.behaviour.social
        if self.edge_sends is None:  # no stored edges: no sender memory
            edge, sends = np.full(receiver.size, -1, dtype=np.int64), np.zeros(1, dtype=np.uint8)
        else:
            sends = self.edge_sends
        top = int(np.iinfo(pop.invites_received.dtype).max)
        a = cfg.adoption
        threshold = a.threshold if a.contagion == "complex" else 0
        response = (bh.power_table(social.saturation, top + 1), bh.power_table(social.repeat_fade, SENDS_TOP + 1),
                    threshold, a.below_threshold)
        bh.social_events((receiver, sender, edge, prob), (pop.invites_received, pop.adopted_friends, sends, top, SENDS_TOP), response)

    def _join(self, idx: np.ndarray, channel: np.ndarray, sender: np.ndarray) -> None:
        pop, day, b = self.pop, self.day, self.cfg.behaviour
        pop.mark_users(idx)
        columns = (pop.state, pop.joined_day, pop.channel, pop.referrer, pop.last_visit, pop.visits, pop.need, pop.need_day,
                   pop.satisfaction, pop.frailty)
        onboarding = (State.ACTIVE, np.float32(b.purchase.initial_need), np.float32(b.satisfaction.onboarding_friction),
                      self.channel_frailty.astype(np.float32))
        kernels.join_columns(idx, channel, sender, day, columns, onboarding)
        # friends who are users (as _gain_users) and who ever joined (joining is for good: never
        # taken back), in one walk along the new users' rows
        self.graph.add_to_neighbours(idx, pop.friends, +1, also=pop.adopted_friends)
        if self.cfg.adoption.join_notice > 0:
            self._notify_friends(idx)
        self.today.new_users = np.concatenate([self.today.new_users, idx])
        self.today.count("new_users", idx.size)
        self.metrics.joined(idx, pop)

    def _notify_friends(self, idx: np.ndarray) -> None:
        """'Your friend joined': every friend of the new users ``idx`` who is not a user hears of it
        tomorrow, a social exposure from the new user along their tie (Centola 2010's site emailed
        every neighbour of each adopter)."""
        position, friend, edge = self.graph.ties_of(idx)
        keep = self.pop.non_users_view()[friend]
        self.today.next_exposures.add(friend[keep], ORGANIC, self.cfg.adoption.join_notice, idx[position[keep]], edge[keep])

    def _gain_users(self, idx: np.ndarray) -> None:
        """Keep ``friends`` (friends who are users) up to date when people become users."""
        self.graph.add_to_neighbours(idx, self.pop.friends, +1)

    def _lose_users(self, idx: np.ndarray) -> None:
        self.graph.add_to_neighbours(idx, self.pop.friends, -1)

    def reactivate(self, idx: np.ndarray) -> None:
        """Bring dormant or churned users back to active today (visits, win-back)."""
        pop = self.pop
        was_churned = idx[pop.state[idx] == State.CHURNED]
        pop.mark_users(idx)
        pop.state[idx] = State.ACTIVE
        pop.churn_day[was_churned] = -1
        self._gain_users(was_churned)
        self.metrics.joined(was_churned, pop)
        self.today.count("reactivated_users", idx.size)

    # ------------------------------------------------------------------ 3. visit
    def _visit(self) -> None:
        self._run_hooks("visit")
        pop, today = self.pop, self.today
        cand = kernels.joined_before(pop.user_index, pop.joined_day, self.day)  # today's joiners visited by joining
        p = bh.visit_probability(pop, cand, self.day, self.cfg.behaviour.visit, today._visit_boost)
        u = self.streams.today("visit").random(cand.size)
        visitors, back = kernels.record_visits(cand, u, p, self.day, pop.state, State.DORMANT, pop.last_visit, pop.visits)
        if back.size:
            self.reactivate(back)
        today.visitors = np.concatenate([today.new_users, visitors])

    # ------------------------------------------------------------------ 4. browse
    def _browse(self) -> None:
        self._run_hooks("browse")

    # ------------------------------------------------------------------ 5. purchase
    def _purchase(self) -> None:
        pop, today, b, day = self.pop, self.today, self.cfg.behaviour, self.day
        rng = self.streams.today("purchase")
        v = today.visitors
        c = b.purchase
        offers = (NO_OFFER if today.relevance is None else today.relevance, NO_OFFER if today.discount is None else today.discount)
        buy = bh.decide_purchases(v, day, bh.demand(pop, c), offers, pop.seg["deal_sensitivity"], c.conversion, rng.random(v.size))
        pos = np.flatnonzero(buy)
        recommended = today.recommended[pos] if today.recommended is not None else None
        follow = today.follow[pos] if today.follow is not None else None
        category = self.choose_category(v[pos], rng, recommended, follow)
        full = self.list_price(v[pos], category, rng)
        if today.basket_factor is not None:
            full = full * today.basket_factor[pos]
        today.bought, today.full_price = pos, full
        basket = full * (1.0 - today.discount[pos]) if today.discount is not None else full.copy()
        source = today.order_source[pos] if today.order_source is not None else np.zeros(pos.size, dtype=np.int8)
        start = today.buyers.size
        self.book_orders(v[pos], basket, category, source, rng)
        today.core_orders, today.core_positions = slice(start, start + pos.size), pos
        self._run_hooks("purchase")

    def list_price(self, buyers: np.ndarray, category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Undiscounted order values (RMB): segment basket x category price level x noise."""
        price = self.pop.seg["basket_rmb"][self.pop.segment[buyers]] * self.catalogue.price_level[category] * self.cfg.platform.price_level
        sigma = self.cfg.behaviour.purchase.basket_sigma
        return price * np.exp(rng.normal(-0.5 * sigma**2, sigma, buyers.size))

    def book_orders(self, buyers: np.ndarray, basket: np.ndarray, category: np.ndarray,
                    source: np.ndarray | str, rng: np.random.Generator) -> None:
        """Record real orders (from the core purchase or from a mechanism): the buyers' history and
        satisfaction (a share of orders goes wrong), GMV, and today's order lists and counters.
        ``basket`` is what buyers pay; mechanisms book any subsidy on top as an incentive cost."""
        pop, b, today = self.pop, self.cfg.behaviour, self.today
        if buyers.size == 0:
            return
        s = b.satisfaction
        kernels.book_buyers(buyers, basket, rng.random(buyers.size), s.service_failure_rate,
                            np.float32(-s.service_failure_shock), np.float32(s.purchase_gain), pop.orders, pop.spend,
                            pop.satisfaction)
        today.buyers = np.concatenate([today.buyers, buyers])
        today.basket = np.concatenate([today.basket, basket])
        today.order_category = np.concatenate([today.order_category, category.astype(np.int64)])
        today.count("orders", buyers.size)
        if isinstance(source, str):
            if source not in ORDER_SOURCES:
                raise ValueError(f"book_orders: source {source!r} is not one of {ORDER_SOURCES}")
            today.count(f"orders_{source}", buyers.size)
        else:
            for name, n in zip(ORDER_COUNTERS, np.bincount(source, minlength=len(ORDER_SOURCES)).tolist()):
                if n:
                    today.count(name, n)
        self.economics.book_gmv(float(basket.sum()))

    def choose_category(self, buyers: np.ndarray, rng: np.random.Generator,
                        recommended: np.ndarray | None = None, follow: np.ndarray | None = None) -> np.ndarray:
        """Category of each order: a recommended one (when followed), else the buyer's favourite,
        else one drawn by popularity."""
        u = rng.random(buyers.size)
        taste_u = rng.random(buyers.size)
        other = draw_choice(rng, self._popularity_cdf, buyers.size)  # = rng.choice(C, p=popularity)
        return kernels.order_categories(buyers, u, taste_u, self.cfg.catalogue.taste_strength, other, self.pop.favourite,
                                        EMPTY if recommended is None else recommended, NO_OFFER if follow is None else follow)

    # ------------------------------------------------------------------ 6. share
    def _share(self) -> None:
        self._run_hooks("share")
        pop, today = self.pop, self.today
        rng = self.streams.today("share")
        v = today.visitors
        rate = np.minimum(pop.param("share_rate", v) * bh.sharing_propensity(pop, v, self.day, self.cfg.behaviour.social), 1.0)
        talkers = v[rng.random(v.size) < rate]
        target, edge = self.graph.sample_neighbours(talkers, rng)
        ok = target >= 0
        today.next_exposures.add(target[ok], ORGANIC, self.cfg.adoption.word_of_mouth_conversion, talkers[ok], edge[ok])

    # ------------------------------------------------------------------ 7. retention
    def _retention(self) -> None:
        self._run_hooks("retention")
        pop, day, c = self.pop, self.day, self.cfg.behaviour.churn
        alive = pop.user_index  # (only read, and churn below replaces the index: no copy needed)
        columns = pop.segment, pop.satisfaction, pop.seg["satisfaction"], pop.last_visit, pop.state
        idle = bh.age_users(alive, day, columns, self.cfg.behaviour.satisfaction.reversion, c.dormant_after_days, State.DORMANT)
        hazard = bh.churn_hazard(pop, alive, day, c, self.today._hazard_ratio)
        u = self.streams.today("retention").random(alive.size)
        gone = alive[(u < bh.churn_probability(hazard)) | (idle >= c.churn_after_days)]
        self.churn(gone)
        self._loyalty_transitions()

    def churn(self, idx: np.ndarray) -> None:
        """Users ``idx`` leave the platform today."""
        pop = self.pop
        idx = idx[pop.state[idx] != State.CHURNED]
        pop.unmark_users(idx)
        pop.state[idx] = State.CHURNED
        pop.churn_day[idx] = self.day
        self._lose_users(idx)
        self.metrics.left(idx, pop)
        self.today.count("churned_users", idx.size)

    def _loyalty_transitions(self) -> None:
        pop, lc = self.pop, self.cfg.behaviour.lifecycle
        # users (after today's churn) who are not dormant: active ones may rise, loyal ones fall
        kernels.loyalty_transitions(pop.user_index, pop.state, pop.orders, pop.satisfaction, lc.loyal_min_orders,
                                    np.float32(lc.loyal_min_satisfaction), np.float32(lc.loyal_min_satisfaction - 0.1),
                                    State.ACTIVE, State.LOYAL)

    # ------------------------------------------------------------------ 8. settle
    def _settle(self) -> None:
        p = self.cfg.platform
        today = self.today
        settle_day(self.economics, p, float(today.basket.sum()), today.visitors.size, self.market_size())
        self._run_hooks("settle")
