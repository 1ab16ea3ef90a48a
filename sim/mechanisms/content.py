"""Content: reviews and 晒单 by buyers, KOC and KOL posts, and scheduled livestreams.

What it models (seed documents 002, 003 and 004: the content-community model of Xiaohongshu and
the embedded livestream commerce of Douyin and Kuaishou):

- user-generated content: a buyer posts a review or a 晒单 (show-off) post with ``ugc_rate`` (more
  often in content-loving segments, more with a reward ``ugc_reward_rmb``); well-connected users
  (KOC, at least ``koc_min_friends`` friends) post on their visits. A post reaches a number of the
  poster's friends that grows with their degree, and the platform's feed carries it beyond the
  graph (``beyond_graph_ratio`` impressions outside per impression inside). KOL posts are bought
  with ``kol_budget_per_1000`` and reach ``kol_reach`` people across the platform and outside;
- an impression on a non-user is a chance to join (channel ``content``; people reached beyond the
  graph are picked with ``model.sample_non_users``); an impression on a user draws them to visit
  the next day and, good content being worth the visit, raises their satisfaction;
- trust: the platform keeps a stock of quality-weighted posts that decays (``half_life_days``);
  relative to the number of users it makes a trust level in [0, 1) that raises the purchase
  probability of every visitor and the conversion of content impressions, and makes browsing
  itself satisfying for content lovers — slow to build, lasting once built;
- livestreams on a schedule (a list of ``{start, days}`` events and/or one every ``live_every_days``
  days): on a stream day users are drawn to the app, viewers convert far more readily at a
  merchant-funded stream price (orders credited to ``livestream``), and the stream reaches people
  outside the platform. The host's fee is a marketing cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import behaviour as bh
from sim.compiled import jit
from sim.kernels import bitmap, flagged
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param
from sim.vocabulary import ACTIVE, AWARE, DORMANT
from sim.vocabulary import CHANNELS

CONTENT = CHANNELS.index("content")
EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True)
class LiveEvent:
    start: int = param(0, lo=0, unit="day", doc="first day of the livestream")
    days: int = param(1, lo=1, hi=36_500, unit="days", doc="days it lasts")


@dataclass(frozen=True)
class ContentConfig(MechanismConfig):
    # user-generated content
    ugc_rate: float = param(0.08, lo=0, hi=1, unit="posts per order", doc="chance a buyer of average content affinity posts a review or 晒单")
    ugc_reward_rmb: float = param(0.0, lo=0, hi=1000, unit="RMB per post", doc="reward for a post; posting rises along the saturating incentive response (x3 at most)")
    ugc_quality: float = param(0.5, lo=0, hi=1, unit="quality in [0, 1]", doc="quality of a buyer's post")
    ugc_friends_reached: float = param(3.0, lo=0, hi=1000, unit="friends per post", doc="friends who see a buyer's post")
    # KOC: well-connected users
    koc_min_friends: int = param(40, lo=1, hi=1_000_000, unit="friends", doc="users with at least this many friends post as KOC")
    koc_post_rate: float = param(0.05, lo=0, hi=1, unit="posts per visit", doc="chance a KOC of average content affinity posts on a visit")
    koc_quality: float = param(0.7, lo=0, hi=1, unit="quality in [0, 1]", doc="quality of a KOC post")
    friends_reached_share: float = param(0.3, lo=0, hi=1, unit="fraction of friends", doc="share of a KOC's friends a post reaches")
    beyond_graph_ratio: float = param(0.5, lo=0, hi=100, unit="impressions per impression", doc="the feed carries a post to this many people outside the poster's friends per friend reached")
    # KOL: bought posts
    kol_budget_per_1000: float = param(0.0, lo=0, hi=1e7, unit="RMB per day per 1,000 people in the market", doc="spend on KOL posts for each 1,000 people in the market (posts bought, and so people reached, grow with the market)")
    kol_cost_per_post_rmb: float = param(3000.0, lo=0, hi=1e9, lo_open=True, unit="RMB per post", doc="price of one KOL post")
    kol_reach: float = param(4000.0, lo=0, hi=1e9, unit="people per post", doc="people a KOL post reaches (anywhere)")
    kol_quality: float = param(0.8, lo=0, hi=1, unit="quality in [0, 1]", doc="quality of a KOL post")
    # reading and trust
    read_conversion: float = param(0.01, lo=0, hi=1, unit="probability", doc="chance an impression of a quality-1 post makes a non-user of average affinity join, before trust")
    read_visit_boost: float = param(0.8, lo=0, hi=10, unit="log-odds", doc="added to the next day's visit log-odds of a user who saw a quality-1 post")
    read_satisfaction: float = param(0.01, lo=0, hi=1, unit="satisfaction", doc="gain of a user who saw a quality-1 post (x content affinity)")
    discovery_per_post: float = param(0.3, lo=0, hi=1000, unit="impressions per post per day", doc="people (anywhere) who find a post of the stock each day through search and the feed, per quality-weighted post")
    half_life_days: float = param(30.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="half-life of the stock of posts that builds trust")
    trust_half_posts: float = param(0.5, lo=0, hi=1e6, lo_open=True, unit="quality posts per user", doc="stock of posts per user at which trust is 0.5")
    trust_purchase_uplift: float = param(0.4, lo=0, hi=10, unit="multiplier", doc="at full trust, every visitor's purchase intensity is x (1 + uplift)")
    trust_adoption_uplift: float = param(1.0, lo=0, hi=10, unit="multiplier", doc="at full trust, content impressions convert (1 + uplift) times as often")
    browse_satisfaction: float = param(0.004, lo=0, hi=1, unit="satisfaction per visit", doc="gain per visit at full trust for a user of average content affinity (a feed worth reading)")
    # livestreams
    live_events: tuple[LiveEvent, ...] = param((), doc="livestreams as a list of {start, days}")
    live_every_days: int = param(7, lo=0, hi=3650, unit="days", doc="a one-day livestream every this many days from live_first_day (0: none)")
    live_first_day: int = param(3, lo=0, hi=1_000_000, unit="day", doc="day of the first scheduled weekly stream")
    live_visit_boost: float = param(1.0, lo=0, hi=10, unit="log-odds", doc="added to every user's visit log-odds on a stream day (x content affinity)")
    live_watch_rate: float = param(0.4, lo=0, hi=1, unit="probability", doc="chance a visitor of average content affinity watches the stream")
    live_conversion_uplift: float = param(2.0, lo=0, hi=50, unit="multiplier", doc="a viewer's purchase intensity is x (1 + uplift)")
    live_discount: float = param(0.15, lo=0, hi=0.95, unit="fraction of price", doc="stream price cut")
    live_platform_share: float = param(0.0, lo=0, hi=1, unit="fraction of the stream price cut", doc="share of the stream price cut the platform funds (0: the merchants fund it, as on livestream commerce where brands cut prices for the host's audience)")
    live_reach_share: float = param(0.03, lo=0, hi=1, unit="fraction of the market per stream day", doc="share of the market (people not yet on the platform among them) the stream reaches")
    live_cost_per_1000: float = param(20.0, lo=0, hi=1e7, unit="RMB per stream day per 1,000 people in the market", doc="host and production fee, which follows the audience (20 is 2,000 RMB a stream day at 100,000 people)")


@register
class Content(Mechanism):
    name = "content"
    Config = ContentConfig
    columns = ("content_ugc_posts", "content_koc_posts", "content_kol_posts", "content_reach", "content_trust_pct",
               "livestream_viewers")
    accounts = {"content_ugc_rewards": "incentive", "content_kol_fees": "acquisition", "content_live_fees": "acquisition",
                "content_live_discounts": "incentive"}
    funding = {"content_live_discounts": "live_platform_share"}
    channels = ("content",)

    def setup(self, model) -> None:
        c = self.config
        self.stock = 0.0  # quality-weighted posts, decaying
        self.posts = 0.0  # posts, decaying alike (stock / posts is the stock's mean quality)
        self.live_share = None  # per visitor, the share of the price the stream cut pays today
        self.trust = 0.0
        self.readers = EMPTY  # users who saw a post yesterday (one entry per impression)
        self.reader_quality = np.zeros(0)
        live = np.zeros(model.cfg.horizon, dtype=bool)
        for ev in c.live_events:
            live[ev.start: ev.start + ev.days] = True
        if c.live_every_days:
            live[c.live_first_day:: c.live_every_days] = True
        self.live = live
        mean_affinity = float(np.mean(model.pop.param("content_affinity")))
        self.affinity_scale = 1.0 / mean_affinity if mean_affinity > 0 else 1.0
        self.ugc_rate = c.ugc_rate * (1.0 + 2.0 * bh.incentive_response(c.ugc_reward_rmb, 5.0))  # with the reward
        self.koc_bits = bitmap(model.graph.degree >= c.koc_min_friends)  # (the graph does not change)

    def _affinity(self, pop, idx: np.ndarray) -> np.ndarray:
        """Content affinity of ``idx`` relative to the population's average."""
        return pop.param("content_affinity", idx) * self.affinity_scale

    def streaming(self, day: int) -> bool:
        return 0 <= day < self.live.size and bool(self.live[day])

    # ------------------------------------------------------------------ daily hooks
    def exposure(self, model) -> None:
        """KOL posts and livestreams reach people today; yesterday's posts bring readers back."""
        c, today = self.config, model.today
        rng = self.rng(model)
        posts = 0
        market = model.market_size()
        if c.kol_budget_per_1000 > 0:
            spend = bh.per_1000(c.kol_budget_per_1000, market)
            posts = int(bh.stochastic_round(np.array([spend / c.kol_cost_per_post_rmb]), rng.random(1))[0])
            if posts:
                model.economics.book("content_kol_fees", posts * c.kol_cost_per_post_rmb)
                today.count("content_kol_posts", posts)
                self._add_to_stock(c.kol_quality, posts)
                self._reach_anyone(model, rng, rng.poisson(c.kol_reach * posts), c.kol_quality, today.exposures, now=True)
        if self.streaming(model.day):
            if c.live_cost_per_1000 > 0:
                model.economics.book("content_live_fees", bh.per_1000(c.live_cost_per_1000, market))
            self._reach_anyone(model, rng, rng.poisson(c.live_reach_share * market), 1.0, today.exposures, now=True, users=False)

    def visit(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        r, q = self.readers, self.reader_quality
        if r.size:  # a person who saw several posts is drawn back once
            today.visit_boost[r] += (c.read_visit_boost * q).astype(np.float32)
            gain = (c.read_satisfaction * q * self._affinity(pop, r)).astype(np.float32)
            pop.satisfaction[r] = np.clip(pop.satisfaction[r] + gain, 0, 1)
        self.readers, self.reader_quality = EMPTY, np.zeros(0)
        if self.streaming(model.day) and c.live_visit_boost:
            users = pop.engaged()
            today.visit_boost[users] += (c.live_visit_boost * self._affinity(pop, users)).astype(np.float32)

    def browse(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        v = today.visitors
        self.live_share = None
        if v.size == 0:
            return
        affinity = None  # of the visitors (a segment's, fixed): looked up once for both uses below
        if self.trust > 0:
            today.boost_relevance(slice(None), 1.0 + c.trust_purchase_uplift * self.trust)  # every visitor
            affinity = self._affinity(pop, v)
            gain = (c.browse_satisfaction * self.trust * affinity).astype(np.float32)
            bh.nudge_satisfaction(pop, v, gain)  # (visitors are distinct: as a clipped sum over them, in one pass)
        if self.streaming(model.day):
            rng = self.rng(model)
            if affinity is None:
                affinity = self._affinity(pop, v)
            watch = np.flatnonzero(rng.random(v.size) < np.minimum(c.live_watch_rate * affinity, 1.0))
            today.boost_relevance(watch, 1.0 + c.live_conversion_uplift)
            if c.live_discount:
                self.live_share = np.zeros(v.size)
                self.live_share[watch] = today.offer_discount(watch, c.live_discount)
            today.attribute(watch, "livestream")
            today.count("livestream_viewers", watch.size)

    def purchase(self, model) -> None:
        """The stream price cut on the orders of viewers who bought: booked as an incentive, funded by
        the merchants unless ``live_platform_share`` says otherwise."""
        if self.live_share is not None:
            _, cut = model.today.subsidy(self.live_share)
            if cut.size:
                model.economics.book("content_live_discounts", float(cut.sum()))

    def share(self, model) -> None:
        """Buyers post reviews and 晒单, KOC post on their visits; the posts reach people tomorrow."""
        c, pop, today = self.config, model.pop, model.today
        rng = self.rng(model)
        buyers = today.buyers
        affinity = (pop.segment, pop.seg["content_affinity"], self.affinity_scale)
        ugc = _posting(buyers, rng.random(buyers.size), *affinity, self.ugc_rate)
        if ugc.size:
            today.count("content_ugc_posts", ugc.size)
            if c.ugc_reward_rmb:
                model.economics.book("content_ugc_rewards", c.ugc_reward_rmb * ugc.size)
        v = today.visitors
        kocs = flagged(v, self.koc_bits)
        kocs = _posting(kocs, rng.random(kocs.size), *affinity, c.koc_post_rate)
        if kocs.size:
            today.count("content_koc_posts", kocs.size)
        self._add_to_stock(c.ugc_quality, ugc.size)
        self._add_to_stock(c.koc_quality, kocs.size)
        ugc_u, koc_u = rng.random(ugc.size), rng.random(kocs.size)
        poster, quality = _post_reach(ugc, ugc_u, c.ugc_friends_reached, c.ugc_quality, kocs, koc_u, model.graph.degree,
                                      c.friends_reached_share, c.koc_quality)
        target, edge = model.graph.sample_neighbours(poster, rng)
        quality = self._impressions(model, target, quality, today.next_exposures, poster, edge)  # (those made)
        if quality.size:
            beyond = int(rng.poisson(c.beyond_graph_ratio * quality.size))
            self._reach_anyone(model, rng, beyond, float(quality.mean()), today.next_exposures, now=False)

    def settle(self, model) -> None:
        """The stock of posts keeps being found (tomorrow), ages, and sets tomorrow's trust."""
        c = self.config
        if c.discovery_per_post and self.stock > 0:
            rng = self.rng(model)
            quality = self.stock / self.posts
            self._reach_anyone(model, rng, int(rng.poisson(c.discovery_per_post * self.stock)), quality, model.today.next_exposures, now=False)
        self.stock *= 0.5 ** (1.0 / c.half_life_days)
        self.posts *= 0.5 ** (1.0 / c.half_life_days)
        users = max(model.pop.count_users(), 1)
        self.trust = self.stock / (self.stock + c.trust_half_posts * users)
        model.today.count("content_trust_pct", 100.0 * self.trust)

    def _add_to_stock(self, quality: float, n: int) -> None:
        self.stock += quality * n
        self.posts += n

    # ------------------------------------------------------------------ reach
    def _reach_anyone(self, model, rng, k: int, quality: float, exposures, now: bool, users: bool = True) -> None:
        """``k`` impressions on people anywhere: non-users via ``sample_non_users``, users at random."""
        if k <= 0:
            return
        pop = model.pop
        share_out = pop.count_non_users() / pop.market_size()  # (people outside a growing market are not reached)
        k_out = int(rng.binomial(k, share_out))
        out = model.sample_non_users(k_out, rng)
        target = out
        if users and k - k_out > 0:
            alive = pop.user_index  # (read at once: no copy needed)
            if alive.size:
                target = np.concatenate([out, alive[rng.integers(0, alive.size, size=k - k_out)]])
        self._impressions(model, target.astype(np.int64), np.full(target.size, quality), exposures, None, None, now)

    def _impressions(self, model, target, quality, exposures, sender, edge, now: bool = False) -> np.ndarray:
        """Non-users reached get a chance to join; users reached come back (tomorrow unless ``now``).
        ``target`` -1: no impression made. Returns the quality of the impressions made."""
        c, pop, today = self.config, model.pop, model.today
        social = sender is not None
        made, receiver, p, sender, edge, users, quality = _split_impressions(
            target, quality, sender if social else EMPTY, edge if social else EMPTY, pop.state, pop.segment,
            pop.seg["content_affinity"], self.affinity_scale, c.read_conversion, 1.0 + c.trust_adoption_uplift * self.trust)
        today.count("content_reach", made.size)
        exposures.add(receiver, CONTENT, p, sender if social else None, edge if social else None)
        if now:
            today.visit_boost[users] += (c.read_visit_boost * quality).astype(np.float32)
        elif users.size:
            self.readers = np.concatenate([self.readers, users])
            self.reader_quality = np.concatenate([self.reader_quality, quality])
        return made

# ====================================================================================== compiled passes
@jit
def _posting(people, u, segment, affinity, scale, rate):
    """``people[u < min(rate x affinity[segment] x scale, 1)]``: who posts (``rate`` times their
    content affinity relative to the average), in one pass instead of five."""
    out = np.empty(people.size, people.dtype)
    m = 0
    for k in range(people.size):
        if u[k] < min(rate * (affinity[segment[people[k]]] * scale), 1.0):
            out[m] = people[k]
            m += 1
    return out[:m]


@jit
def _post_reach(ugc, ugc_u, ugc_friends, ugc_quality, kocs, koc_u, degree, koc_share, koc_quality):
    """Each post's impressions on friends: the poster once per friend reached
    (``stochastic_round(ugc_friends)`` for a buyer's post, ``stochastic_round(koc_share x degree)``
    for a KOC's, buyers' posts first) and the quality of each."""
    n = np.empty(ugc.size + kocs.size, np.int64)
    for k in range(ugc.size):
        n[k] = np.int64(np.floor(ugc_friends + ugc_u[k]))
    for k in range(kocs.size):
        n[ugc.size + k] = np.int64(np.floor(koc_share * degree[kocs[k]] + koc_u[k]))
    total = 0
    for k in range(n.size):
        total += n[k]
    poster = np.empty(total, np.int64)
    quality = np.empty(total, np.float64)
    j = 0
    for k in range(n.size):
        who = ugc[k] if k < ugc.size else kocs[k - ugc.size]
        q = ugc_quality if k < ugc.size else koc_quality
        for _ in range(n[k]):
            poster[j] = who
            quality[j] = q
            j += 1
    return poster, quality


@jit
def _split_impressions(target, quality, sender, edge, state, segment, affinity, scale, conversion, trust_factor):
    """Impressions ``target`` (-1: none made, skipped) of posts of ``quality`` split by who they reach:
    non-users (state up to aware) get a chance to join, ``min(conversion x quality x trust_factor x
    affinity[segment] x scale, 1)``, with the impression's ``sender`` and ``edge`` (when given:
    non-empty); users (active to dormant) are drawn back. Returns the quality of every impression
    made, then (receiver, probability, sender, edge) of the first kind, (user, quality) of the second."""
    n = target.size
    social = sender.size > 0
    made = np.empty(n, np.float64)
    out_target = np.empty(n, np.int64)
    out_p = np.empty(n, np.float64)
    out_sender = np.empty(n if social else 0, np.int64)
    out_edge = np.empty(n if social else 0, np.int64)
    users = np.empty(n, np.int64)
    user_quality = np.empty(n, np.float64)
    m = 0
    a = 0
    b = 0
    for k in range(n):
        t = target[k]
        if t < 0:
            continue
        q = quality[k]
        made[m] = q
        m += 1
        s = state[t]
        if s <= AWARE:
            out_target[a] = t
            out_p[a] = min(conversion * q * trust_factor * (affinity[segment[t]] * scale), 1.0)
            if social:
                out_sender[a] = sender[k]
                out_edge[a] = edge[k]
            a += 1
        elif ACTIVE <= s <= DORMANT:
            users[b] = t
            user_quality[b] = q
            b += 1
    return (made[:m], out_target[:a], out_p[:a], out_sender[:a if social else 0], out_edge[:a if social else 0],
            users[:b], user_quality[:b])
