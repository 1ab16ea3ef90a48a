"""The configuration of a run: the schema of every core key, and scenario composition with Hydra.

The schema below is the single source of defaults. ``scenarios/`` holds only what differs from it:
graph choices, platform presets, named scenarios and strategies, composed by Hydra's defaults lists
and overridden with Hydra's command-line grammar (``key=value``, ``group=option``). The composed
dictionary is validated at the edge into frozen dataclasses; the engine trusts it from there on.

A scenario name (``scenario=NAME``) is looked up in three config groups, in this order:
``named/`` (default, all_mechanisms, the classic diffusion models), ``platform/`` (the platform
presets) and ``strategy/`` (named strategies, each overriding a preset).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from sim import compositions
from sim.inputs import MAX_CONFIG_BYTES, file_problem, parse_yaml, read_text, read_yaml
from sim.mechanisms import REGISTRY
from sim.schema import MAX_PEOPLE, ConfigError, build, clip, excerpt, param, require, suggest, to_plain, unknown_key
from sim.vocabulary import CHANNELS  # noqa: F401  (as before)

SCENARIO_GROUPS = ("named", "platform", "strategy")


# --------------------------------------------------------------------------------------------
# Population


@dataclass(frozen=True)
class SegmentConfig:
    """A user segment: a parameter set of the shared behaviour model (DESIGN section 3)."""

    share: float = param(0.25, lo=0, hi=1, unit="fraction of people", doc="share of the population in this segment")
    visit_rate: float = param(0.04, lo=0, hi=1, unit="probability per day", doc="visit probability of an established user of average propensity at baseline satisfaction, before habit (new users come far more often: behaviour.visit.novelty_odds)")
    need_rate: float = param(0.04, lo=0, hi=5, unit="orders per day", doc="latent demand accrued per day")
    basket_rmb: float = param(60.0, lo=0, hi=1e6, lo_open=True, unit="RMB", doc="mean order value")
    share_rate: float = param(0.05, lo=0, hi=1, unit="probability per visit", doc="chance a visit includes word of mouth to one friend")
    invite_propensity: float = param(1.0, lo=0, hi=20, unit="multiplier", doc="how readily this segment sends referral invitations")
    deal_sensitivity: float = param(1.0, lo=0, hi=20, unit="multiplier", doc="response to discounts and rewards")
    content_affinity: float = param(1.0, lo=0, hi=20, unit="multiplier", doc="response to content and livestreams")
    frailty: float = param(1.0, lo=0, hi=100, lo_open=True, unit="multiplier", doc="mean churn-hazard multiplier")
    satisfaction: float = param(0.5, lo=0, hi=1, unit="fraction", doc="baseline satisfaction the segment reverts to")


def _default_segments() -> dict[str, SegmentConfig]:
    # Magnitudes follow the domain documents: deal seekers are many, cheap and fickle; loyal value
    # buyers are few, buy often and stay (seed 001: loyal users repurchase about 40 % more).
    return {
        "deal_seeker": SegmentConfig(share=0.35, visit_rate=0.03, need_rate=0.035, basket_rmb=45.0, share_rate=0.06, invite_propensity=1.3, deal_sensitivity=2.0, content_affinity=0.6, frailty=1.4, satisfaction=0.45),
        "social_sharer": SegmentConfig(share=0.25, visit_rate=0.04, need_rate=0.04, basket_rmb=60.0, share_rate=0.12, invite_propensity=2.0, deal_sensitivity=1.2, content_affinity=1.2, frailty=1.0, satisfaction=0.5),
        "content_lover": SegmentConfig(share=0.20, visit_rate=0.052, need_rate=0.035, basket_rmb=85.0, share_rate=0.07, invite_propensity=0.8, deal_sensitivity=0.8, content_affinity=2.5, frailty=0.85, satisfaction=0.55),
        "loyal_value": SegmentConfig(share=0.20, visit_rate=0.048, need_rate=0.06, basket_rmb=120.0, share_rate=0.04, invite_propensity=0.6, deal_sensitivity=0.5, content_affinity=0.8, frailty=0.6, satisfaction=0.6),
    }


@dataclass(frozen=True)
class EntryPoint:
    """One point of a growing market's curve: the share of the population in the market on a day."""

    day: int = param(0, lo=0, hi=36_500, unit="day", doc="the day")
    share: float = param(1.0, lo=0, hi=1, lo_open=True, unit="fraction of the population", doc="share of the population in the market on that day")


@dataclass(frozen=True)
class PopulationConfig:
    size: int = param(100_000, lo=2, hi=MAX_PEOPLE, unit="people", doc="people in the addressable market (graph nodes); an edge list sets it to its node count")
    segments: dict[str, SegmentConfig] = param(factory=_default_segments, doc="segment name -> parameters; shares must sum to 1")
    frailty_cv: float = param(1.3, lo=0, hi=10, unit="coefficient of variation", doc="spread of individual churn hazards (gamma frailty); 0 makes everyone alike")
    entry: tuple[EntryPoint, ...] = param((), doc="a growing market: points {day, share} of the share of the population in the market, joined by straight lines (flat before the first and after the last; the last share must be 1); people enter in random order; empty: everyone is in the market from day 0")
    visit_cv: float = param(0.55, lo=0, hi=10, unit="coefficient of variation", doc="spread of individual visit rates (gamma multiplier of the visit odds: the NBD model of repeat behaviour, Ehrenberg 1959); 0 makes everyone of a segment alike")

    def check(self, path: str) -> None:
        if self.entry:
            days, shares = [p.day for p in self.entry], [p.share for p in self.entry]
            require(all(b > a for a, b in zip(days, days[1:])), f"{path}.entry", days, "days must increase")
            require(all(b >= a for a, b in zip(shares, shares[1:])), f"{path}.entry", shares, "shares must not fall (people do not leave the market)")
            require(shares[-1] == 1.0, f"{path}.entry", shares[-1], "the last share must be 1 (population.size is the market at its largest)")
        require(len(self.segments) > 0, f"{path}.segments", {}, "allowed is at least one segment")
        require(len(self.segments) <= 64, f"{path}.segments", len(self.segments), "allowed is at most 64 segments")
        total = sum(s.share for s in self.segments.values())
        require(abs(total - 1.0) < 1e-6, f"{path}.segments", round(total, 6), "segment shares must sum to 1")


# --------------------------------------------------------------------------------------------
# Graph, adoption and the behaviour model


@dataclass(frozen=True)
class GraphConfig:
    kind: Literal["er", "ba", "ws", "holme_kim", "sbm", "lattice", "regular", "complete", "edgelist"] = param("holme_kim", doc="generator, or 'complete' (well mixed, no edges stored) or 'edgelist' (load graph.path)")
    avg_degree: float = param(20.0, lo=1, hi=10_000, unit="friends per person", doc="mean number of friends (generators only; lattice: 4, 6 or 8; regular: everyone has round(avg_degree))")
    rewire: float = param(0.1, lo=0, hi=1, unit="probability", doc="ws: chance each lattice edge is rewired")
    triangle_prob: float = param(0.5, lo=0, hi=1, unit="probability", doc="holme_kim: chance an attachment closes a triangle")
    community_size: int = param(100, lo=2, hi=100_000_000, unit="people per community",
                                doc="sbm: people in each community (the market is split into about size / community_size equal ones, so a "
                                    "community means the same at any market size). 100: real social networks' best-separated communities "
                                    "are of up to about 100 people, larger groups blending into the rest (Leskovec, Lang, Dasgupta and "
                                    "Mahoney 2009); Dunbar's 150 is the same order")
    homophily: float = param(0.8, lo=0, hi=1, unit="fraction of edges",
                             doc="sbm: share of each person's ties inside their community (0.8: 84 % of Facebook friendships join people "
                                 "of the same country, Ugander et al. 2011); with 20 friends and communities of 100 it gives a "
                                 "clustering of about 0.10, fifty times a random graph's")
    path: str | None = param(None, doc="edgelist: file of 'u v' pairs (whitespace or comma separated, '#' comments)")

    def check(self, path: str) -> None:
        if self.kind == "edgelist":
            require(bool(self.path), f"{path}.path", self.path, "graph.kind=edgelist needs graph.path, the edge-list file")
            problem = file_problem(Path(self.path).expanduser())
            require(problem is None, f"{path}.path", self.path, problem if problem == "no such file" else f"{problem}; allowed is an edge-list file")
        if self.kind == "lattice":
            from sim.graph.generators import LATTICE_DEGREES  # (the graph package imports this module)

            require(self.avg_degree in LATTICE_DEGREES, f"{path}.avg_degree", self.avg_degree,
                    "graph.kind=lattice allows 4 (square), 6 (triangular) or 8 (square with diagonals)")


@dataclass(frozen=True)
class AdoptionConfig:
    contagion: Literal["simple", "complex"] = param("simple", doc="simple: each social exposure converts independently; complex: a friend's invitation or mention converts only once `threshold` distinct friends have joined")
    threshold: int = param(2, lo=1, hi=1000, unit="distinct friends", doc="complex contagion: friends who have ever joined before a friend's invitation or mention can convert (counted cumulatively, as Centola 2010 counted adopting neighbours)")
    below_threshold: float = param(0.0, lo=0, hi=1, unit="multiplier", doc="complex contagion: response to a friend's invitation or mention while fewer than `threshold` friends have joined, relative to one at the threshold (0: a strict threshold, Centola and Macy 2007)")
    join_notice: float = param(0.0, lo=0, hi=1, unit="probability", doc="chance a 'your friend joined' notice makes a non-user join; every non-user friend of a new user gets one the next day, as Centola 2010's site emailed every neighbour of an adopter (0: no notices)")
    seeding: Literal["random", "neighbourhood"] = param("random", doc="random: the day-0 seed users are a share seed_fraction of the market picked at random; neighbourhood: those people and all their friends")
    external_rate: float = param(0.0002, lo=0, hi=1, unit="probability per day", doc="chance a non-user hears of the platform from outside the graph (press, app stores)")
    external_conversion: float = param(0.5, lo=0, hi=1, unit="probability", doc="chance an outside exposure leads to joining")
    word_of_mouth_conversion: float = param(0.08, lo=0, hi=1, unit="probability", doc="chance an unpaid mention by a friend leads to joining")
    seed_fraction: float = param(0.0005, lo=0, hi=1, unit="fraction of the market", doc="users on day 0, picked at random, as a share of the market (rounded, at least one when above 0): 0.0005 is 50 of 100,000 people")


@dataclass(frozen=True)
class DiffusionConfig:
    """A classic diffusion model run on the social graph instead of (or beside) the platform's own
    adoption (``sim/diffusion.py``; presets ``scenario=ic | lt | bass_network``). One step is one day;
    adopting means joining the platform through the ``organic`` channel, and adoption is "ever
    activated" (``cumulative_users``). Linear threshold draws each person's threshold uniformly in
    [0, 1] once per run and weighs every neighbour equally (1 / degree), as in the textbook model
    (Kempe, Kleinberg and Tardos 2003)."""

    model: Literal["none", "ic", "lt", "bass"] = param("none", doc="none: off; ic: independent cascade; lt: linear threshold (uniform random thresholds); bass: Bass on the network (p + q x share of adopted friends)")
    probability: float = param(0.05, lo=0, hi=1, unit="probability per edge", doc="ic: chance a person activated on day t activates each inactive friend on day t+1 (exactly one chance per edge)")
    seed_fraction: float = param(0.01, lo=0, hi=1, unit="fraction of people", doc="share of people activated at random on day 0 (at least one person when above 0), like NDlib's fraction_infected")
    p: float = param(0.03, lo=0, hi=1, unit="probability per day", doc="bass: innovation, the daily chance a non-adopter adopts on its own (the textbook 0.03 is per period; here a period is a day)")
    q: float = param(0.38, lo=0, hi=1, unit="probability per day", doc="bass: imitation, added daily chance when every friend has adopted; scaled by the share of adopted friends (the textbook 0.38 is per period; here a day)")


@dataclass(frozen=True)
class VisitConfig:
    satisfaction_weight: float = param(1.3, lo=0, hi=50, unit="log-odds per unit satisfaction", doc="how much satisfaction raises visit odds")
    habit_weight: float = param(0.3, lo=0, hi=10, unit="log-odds per log visit", doc="habit: visit odds rise with log(1 + past visits)")
    dormant_odds: float = param(0.12, lo=0, hi=1, unit="odds ratio", doc="visit odds of a dormant user relative to an active one: lapsed users still come now and then, and can be won back")
    loyal_odds: float = param(1.5, lo=1, hi=20, unit="odds ratio", doc="visit odds of a loyal user relative to an active one")
    novelty_odds: float = param(20.0, lo=0, hi=1000, unit="odds ratio - 1", doc="a new user's extra visit odds on the joining day: odds x (1 + novelty_odds x exp(-age / novelty_days)); app retention curves lose most users in the first week (Adjust 2022: day 1 25 %, day 7 about 11 %, day 30 6 %)")
    novelty_days: float = param(14.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="time scale over which a new user's extra visit odds fade (exponentially)")


@dataclass(frozen=True)
class PurchaseConfig:
    conversion: float = param(0.45, lo=0, hi=20, unit="per order of need per visit", doc="purchase intensity: P(buy) = 1 - exp(-conversion x need x relevance x deal factor)")
    need_cap: float = param(3.0, lo=0, hi=1000, lo_open=True, unit="orders", doc="latent demand stops accruing at this stock")
    initial_need: float = param(0.8, lo=0, hi=1000, unit="orders", doc="demand stock of a new user (why they came)")
    basket_sigma: float = param(0.5, lo=0, hi=3, unit="log RMB", doc="spread of order values (lognormal)")
    tenure_elasticity: float = param(0.0, lo=0, hi=5, unit="elasticity", doc="demand grows with tenure as (1 + years on the platform)^elasticity (0: not at all); users move more of their shopping to a platform they stay on (Pinduoduo's spend per active buyer rose 4.9x from 2017 to 2021)")
    loyal_need_ratio: float = param(1.4, lo=0, hi=10, unit="multiplier", doc="demand accrual of loyal users relative to active (seed 001: +40 % repurchase)")


@dataclass(frozen=True)
class ChurnConfig:
    base_hazard: float = param(1.3, lo=0, hi=20, unit="per day", doc="churn hazard (leaving for good) on the joining day for frailty 1 at baseline satisfaction: most users of an app are gone within days (Adjust 2022: day-1 retention 25 %, e-commerce 19-20 %)")
    tenure_days: float = param(3.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="tenure scale: hazard x (1 + age / tenure_days)^-tenure_decay")
    tenure_decay: float = param(1.3, lo=0, hi=10, unit="exponent", doc="how fast hazard falls with tenure (0: constant): those who stay past the first weeks rarely leave for good, they lapse (Fader and Hardie 2007: conditional retention rises with tenure)")
    satisfaction_weight: float = param(3.0, lo=0, hi=50, unit="log-hazard per unit satisfaction", doc="how much satisfaction lowers hazard")
    friends_weight: float = param(0.3, lo=0, hi=10, unit="log-hazard per log friend", doc="social embeddedness: hazard x (1 + friends on platform)^-friends_weight")
    loyal_ratio: float = param(0.6, lo=0, hi=1, unit="hazard ratio", doc="hazard of loyal users relative to active")
    dormant_ratio: float = param(0.25, lo=0, hi=20, unit="hazard ratio", doc="hazard of dormant users relative to active: a lapsed user who still has the app rarely removes it (a large dormant base is the target of win-back)")
    dormant_after_days: int = param(14, lo=1, hi=100_000, unit="days", doc="days without a visit before a user counts as dormant")
    churn_after_days: int = param(90, lo=1, hi=100_001, unit="days", doc="days without a visit before a dormant user counts as churned")


@dataclass(frozen=True)
class SatisfactionConfig:
    reversion: float = param(0.02, lo=0, hi=1, unit="fraction per day", doc="pull of satisfaction back to the segment baseline")
    purchase_gain: float = param(0.04, lo=0, hi=1, unit="satisfaction", doc="gain from a good purchase")
    service_failure_rate: float = param(0.05, lo=0, hi=1, unit="probability per order", doc="chance an order goes wrong (late, damaged, bad service)")
    service_failure_shock: float = param(0.12, lo=0, hi=1, unit="satisfaction", doc="loss from a failed order")
    onboarding_friction: float = param(0.1, lo=0, hi=1, unit="satisfaction", doc="loss on the joining day from sign-up complexity (seed 001: complexity drives churn)")


@dataclass(frozen=True)
class SocialConfig:
    saturation: float = param(0.7, lo=0, hi=1, lo_open=True, unit="multiplier", doc="each earlier invitation received scales the next one's effect by this (Leskovec et al. 2007)")
    repeat_fade: float = param(0.5, lo=0, hi=1, unit="multiplier", doc="each repeat from the same sender scales its effect by this")
    novelty_boost: float = param(2.0, lo=0, hi=100, unit="multiplier", doc="extra sharing and inviting by a brand-new user: x (1 + novelty_boost) on the joining day")
    novelty_days: float = param(5.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="time scale over which the novelty boost fades (exponentially)")
    ask_fade: float = param(0.8, lo=0, hi=1, unit="multiplier", doc="requests for help (group-buy links, assist clicks): each recent request a person received scales their response to the next by this")
    ask_half_life_days: float = param(7.0, lo=0, hi=36_500, lo_open=True, unit="days", doc="how fast the memory of requests received fades (half-life)")
    ask_tolerance: float = param(3.0, lo=0, hi=1000, unit="requests", doc="recent requests a person takes without annoyance")
    ask_annoyance: float = param(0.02, lo=0, hi=1, unit="satisfaction per request", doc="satisfaction lost per request beyond the tolerance")


@dataclass(frozen=True)
class LifecycleConfig:
    loyal_min_orders: int = param(3, lo=1, hi=1_000_000, unit="orders", doc="orders before an active user can become loyal")
    loyal_min_satisfaction: float = param(0.6, lo=0, hi=1, unit="satisfaction", doc="satisfaction needed to become (and stay) loyal")


@dataclass(frozen=True)
class BehaviourConfig:
    visit: VisitConfig = param(factory=VisitConfig, doc="visit decision")
    purchase: PurchaseConfig = param(factory=PurchaseConfig, doc="purchase decision")
    churn: ChurnConfig = param(factory=ChurnConfig, doc="churn hazard and dormancy")
    satisfaction: SatisfactionConfig = param(factory=SatisfactionConfig, doc="satisfaction dynamics")
    social: SocialConfig = param(factory=SocialConfig, doc="response to invitations")
    lifecycle: LifecycleConfig = param(factory=LifecycleConfig, doc="loyalty thresholds")

    def check(self, path: str) -> None:
        c = self.churn
        require(c.churn_after_days > c.dormant_after_days, f"{path}.churn.churn_after_days", c.churn_after_days,
                f"must exceed behaviour.churn.dormant_after_days ({c.dormant_after_days})")


@dataclass(frozen=True)
class CatalogueConfig:
    categories: int = param(20, lo=1, hi=10_000, unit="categories", doc="product categories")
    popularity_exponent: float = param(1.0, lo=0, hi=5, unit="Zipf exponent", doc="how unequal category popularity is")
    taste_strength: float = param(0.6, lo=0, hi=1, unit="probability", doc="chance an order falls in the buyer's favourite category")
    price_spread: float = param(0.4, lo=0, hi=3, unit="log RMB", doc="spread of category price levels")
    breadth_growth: float = param(0.0, lo=0, hi=10, unit="fraction per year", doc="growth of everyone's demand on the platform as its catalogue widens, compounded yearly (0: a fixed catalogue)")


@dataclass(frozen=True)
class PlatformConfig:
    name: str = param("generic", doc="preset name (informational)")
    take_rate: float = param(0.05, lo=0, hi=1, unit="fraction of GMV", doc="commission the platform keeps")
    ad_revenue_per_visit_rmb: float = param(0.02, lo=0, hi=10_000, unit="RMB per visit", doc="advertising revenue per daily visit")
    price_level: float = param(1.0, lo=0, hi=100, lo_open=True, unit="multiplier", doc="scales every price (a metamorphic-test knob)")
    first_party_share: float = param(0.0, lo=0, hi=1, unit="fraction of GMV", doc="share of GMV the platform sells itself (first-party, as JD.com does; 0: a marketplace like Pinduoduo or Taobao): its sales are revenue, their goods a cost; the take rate applies to the rest")
    first_party_margin: float = param(0.15, lo=0, hi=1, unit="fraction of first-party sales", doc="gross margin on first-party sales (JD.com's gross margin was about 14-15 % of net revenue, 2019-2023 annual reports)")
    payment_rate: float = param(0.006, lo=0, hi=0.2, unit="fraction of GMV", doc="payment processing cost the platform pays on every yuan (WeChat Pay and Alipay charge 0.6 % on physical goods; Pinduoduo's cost of revenues, mostly payment processing, was 6.3 bn RMB on 1,007 bn RMB of GMV in 2019, 0.63 %)")
    fulfilment_rate: float = param(0.065, lo=0, hi=1, unit="fraction of first-party GMV", doc="warehousing and delivery of first-party orders (JD.com's fulfilment expenses: 6.3-6.8 % of net revenue, 2019-2023 annual reports); marketplace merchants ship their own orders")
    operating_cost_per_1000: float = param(0.0, lo=0, hi=1e6, unit="RMB per day per 1,000 people in the market", doc="fixed operating cost (staff, R&D, general and administrative): it does not change with users or orders, so it cancels in a comparison of strategies; 0 by default (a generic platform has no size), the Pinduoduo preset sets its own (R&D + G&A of 2019 over China's internet users)")
    discount_rate: float = param(0.10, lo=0, hi=2, unit="fraction per year", doc="discount rate of the terminal value: about the cost of capital of Chinese internet platforms (analysts' DCF models of them commonly use 8-12 %)")
    terminal_years: float = param(3.0, lo=0, hi=50, unit="years", doc="years after the horizon over which the users left are valued (0: no terminal value); 3 to 5 is the explicit period of a usual DCF, and 3 keeps the value conservative")


@dataclass(frozen=True)
class SimConfig:
    seed: int = param(0, lo=0, hi=2**63 - 1, doc="seed of every random stream of the run (of the daily behaviour only, when world_seed is set)")
    world_seed: int | None = param(None, lo=0, hi=2**63 - 1,
                                   doc="seed of the world: the streams that build the model (social graph, people's attributes, catalogue, "
                                       "market entry); null: the same as seed. A comparison with world=fixed sets it to build every "
                                       "replicate's world alike, so replicates differ only in behaviour")
    horizon: int = param(365, lo=1, hi=36_500, unit="days", doc="days simulated")
    scenario: str = param("default", doc="name of the scenario this config was composed from")
    out: str = param("results/runs", doc="folder in which run folders are created")
    population: PopulationConfig = param(factory=PopulationConfig, doc="people")
    graph: GraphConfig = param(factory=GraphConfig, doc="social graph")
    adoption: AdoptionConfig = param(factory=AdoptionConfig, doc="joining the platform")
    diffusion: DiffusionConfig = param(factory=DiffusionConfig, doc="classic diffusion models: independent cascade, linear threshold, Bass on the network")
    behaviour: BehaviourConfig = param(factory=BehaviourConfig, doc="the shared behaviour model")
    catalogue: CatalogueConfig = param(factory=CatalogueConfig, doc="products")
    platform: PlatformConfig = param(factory=PlatformConfig, doc="platform economics")
    mechanisms: dict[str, Any] = param(factory=dict, doc="mechanism name -> its settings")

    def enabled(self) -> list[str]:
        """Names of the enabled mechanisms, in registry order."""
        return [name for name, mc in self.mechanisms.items() if mc.enabled]

    def check(self, path: str) -> None:
        a = self.adoption
        if self.population.entry:
            require(self.diffusion.model == "none", "population.entry", "(a curve)",
                    f"a growing market works with the platform's own adoption, not diffusion.model={self.diffusion.model}")
        if self.graph.kind == "complete":  # everyone is everyone's friend: no neighbourhood to single out
            require(a.seeding == "random", "adoption.seeding", a.seeding, "graph.kind=complete allows only 'random'")
            require(a.join_notice == 0, "adoption.join_notice", a.join_notice, "graph.kind=complete allows only 0 (no ties to notify along)")

    def with_seed(self, seed: int) -> SimConfig:
        return with_sources(replace(self, seed=int(seed)), getattr(self, SOURCES, ()))



# --------------------------------------------------------------------------------------------
# Validation


def validate(data: Mapping[str, Any]) -> SimConfig:
    """Turn a composed mapping into a validated :class:`SimConfig` (raises :class:`ConfigError`)."""

    if not isinstance(data, Mapping):
        raise ConfigError(f"config = {excerpt(data)}: allowed is a mapping of settings")
    data = dict(data)
    raw_mechs = data.pop("mechanisms", None) or {}
    if not isinstance(raw_mechs, Mapping):
        raise ConfigError(f"mechanisms = {excerpt(raw_mechs)}: allowed is a mapping of mechanism names to settings")
    for name in raw_mechs:
        if name not in REGISTRY:
            raise ConfigError(f"mechanisms.{name}: unknown mechanism{suggest(str(name), REGISTRY)}; registered: {', '.join(REGISTRY)}")
    mechs = {name: build(cls.Config, raw_mechs.get(name, {}), f"mechanisms.{name}") for name, cls in REGISTRY.items()}
    cfg = build(SimConfig, data)
    return replace(cfg, mechanisms=mechs)


def defaults() -> dict[str, Any]:
    """Every key with its default value, mechanisms included (the Hydra schema node)."""

    plain = to_plain(SimConfig())
    plain["mechanisms"] = {name: to_plain(cls.Config()) for name, cls in REGISTRY.items()}
    return plain


# --------------------------------------------------------------------------------------------
# Composition


def scenario_dirs() -> list[Path]:
    """Scenario roots: the project's ``scenarios/`` then any listed in ``SIM_SCENARIO_PATH``."""
    roots = []
    env = os.environ.get("SIM_SCENARIO_PATH", "")
    for part in env.split(os.pathsep):
        if part.strip():
            roots.append(Path(part).expanduser().resolve())
    builtin = Path(__file__).resolve().parent.parent / "scenarios"
    return [builtin, *[r for r in roots if r != builtin]]


def available_scenarios() -> dict[str, str]:
    """Scenario name -> the config group that defines it."""
    found: dict[str, str] = {}
    for root in scenario_dirs():
        for group in SCENARIO_GROUPS:
            for path in sorted((root / group).glob("*.yaml")):
                if path.stem != "none":
                    found.setdefault(path.stem, group)
    return found


def scenario_path(name: str) -> Path:
    """The file that defines scenario ``name`` (the first scenario root that has it)."""
    found = available_scenarios()
    if name not in found:
        raise ConfigError(f"scenario = {excerpt(name)}: no such scenario{suggest(name, found)}; available: {', '.join(sorted(found))}")
    return next(p for p in (root / found[name] / f"{name}.yaml" for root in scenario_dirs()) if p.exists())


def scenario_description(name: str, brief: bool = False) -> str:
    """What a scenario is, from the comment at the top of its file, as one paragraph (``brief``:
    its first sentence only, for listings)."""

    lines = []
    for line in read_text(scenario_path(name)).splitlines():
        if not line.startswith("#"):
            break
        if "@package" not in line:
            lines.append(line.lstrip("#").strip())
    text = " ".join(ln for ln in lines if ln)
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(])", text, maxsplit=1)[0] if brief else text


def scenario_override(name: str) -> str:
    """The Hydra group override that selects scenario ``name``."""
    found = available_scenarios()
    if name not in found:
        raise ConfigError(f"scenario = {excerpt(name)}: no such scenario{suggest(name, found)}; available: {', '.join(sorted(found))}")
    return f"{found[name]}={name}"


_OVERRIDE = re.compile(r"^(?P<prefix>[+~]{0,2})(?P<key>[A-Za-z_][\w./@-]*)(?P<eq>=?)(?P<value>.*)$", re.S)


def check_override_text(ov: str) -> re.Match:
    """An override's parts; refused in one line unless it is ``key=value`` whose value, if it has
    non-ASCII characters, is quoted (Hydra's grammar reads unquoted values as ASCII only)."""
    m = _OVERRIDE.match(ov)
    if m is None or not m.group("eq"):
        hint = "" if ov.isascii() else "; a value with spaces or non-ASCII characters is quoted as a whole, as in \"key='a b'\""
        raise ConfigError(f"override {excerpt(ov)}: allowed is key=value (Hydra override grammar){hint}")
    value = m.group("value")
    if not value.isascii() and not re.fullmatch(r"\s*(['\"]).*\1\s*", value, re.S):
        key = m.group("prefix") + m.group("key")
        raise ConfigError(f"{key} = {excerpt(value)}: text with non-ASCII characters must be quoted, "
                          f"as in \"{key}='{clip(value, 40)}'\" (the outer quotes are for the shell)")
    return m


def _split(overrides: Iterable[str]) -> tuple[str | None, list[str]]:
    """Pull ``scenario=NAME`` out of an override list."""
    scenario, rest = None, []
    for ov in overrides:
        m = check_override_text(ov)
        if m.group("key") == "scenario" and not m.group("prefix"):
            scenario = m.group("value")
            if not scenario.strip():
                raise ConfigError(f"scenario = {scenario!r}: allowed is the name of a scenario (`sim scenarios` lists them)")
        else:
            rest.append(ov)
    return scenario, rest


def selected_config_names(overrides: Iterable[str]) -> set[str]:
    """The config names (``group/option``) that group overrides and ``scenario=`` select, sweep
    values (``graph=er,ws``) included; other keys give names that match no file."""
    found = available_scenarios()
    names = set()
    for ov in overrides:
        m = _OVERRIDE.match(ov)
        if m is None or not m.group("eq"):
            continue
        key = m.group("key").split("@")[0]
        for value in re.split(r"[,()\[\]\s]+", m.group("value")):
            if value:
                names.add(f"{found[value]}/{value}" if key == "scenario" and value in found else f"{key}/{value}")
    return names


def _check_override_keys(overrides: Sequence[str], plain_defaults: Mapping[str, Any]) -> None:
    """Name unknown keys and unknown group options before Hydra does, in one line."""
    groups = _group_options()
    for ov in overrides:
        m = _OVERRIDE.match(ov)
        key, prefix = m.group("key"), m.group("prefix")
        if key.startswith("hydra") or prefix.startswith("+"):
            continue
        if key in groups:
            value = m.group("value")
            if value not in groups[key] and not any(c in value for c in ",()[]*"):
                raise ConfigError(f"{key} = {excerpt(value)}: no such option{suggest(value, groups[key])}; available: {', '.join(sorted(groups[key]))}")
            continue
        node: Any = plain_defaults
        walked = []
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
                walked.append(part)
                continue
            if isinstance(node, Mapping) and walked == ["population", "segments"]:
                raise ConfigError(f"{key}: unknown segment '{part}'{suggest(part, node)}; add one with +{key}=...")
            options = list(node) if isinstance(node, Mapping) else []
            where = ".".join(walked + [part])
            raise ConfigError(unknown_key(where, part, options))


# ------------------------------------------------------------------------------ no code from config
#: Keys by which Hydra or OmegaConf would import or call code (``hydra.utils.instantiate``, logging's
#: ``()`` factories). A configuration names values, never code: these keys are refused everywhere.
CODE_KEYS = frozenset({"_target_", "_args_", "_partial_", "_convert_", "_recursive_", "()"})


def _code_key(node: Any, path: str = "") -> str | None:
    """The first key of ``node`` (a parsed YAML tree) that would name code, as a dotted path."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key) in CODE_KEYS:
                return where
            found = _code_key(value, where)
            if found:
                return found
    elif isinstance(node, list):
        for k, value in enumerate(node):
            found = _code_key(value, f"{path}[{k}]")
            if found:
                return found
    return None


def reaches_hydra(text: str) -> bool:
    """Whether a config group path, package or override key names Hydra's own configuration: a
    segment ``hydra`` anywhere in it (``hydra/job_logging``, ``graph@hydra.hydra_logging``,
    ``_global_.hydra.callbacks``, ``override /hydra/launcher``). Packages in a defaults list are
    relative to their file's, so a ``hydra`` segment anywhere counts, not only the first."""
    return "hydra" in re.split(r"[\s./@:]+", text.strip())


def _package_headers(text: str) -> list[str]:
    """Every package a file's ``# @package NAME`` comment lines name (Hydra honours the last of the
    leading ones; every one is checked, so none it could honour is missed)."""
    return [m.group(1) for line in text.splitlines() if (m := re.match(r"^\s*#\s*@\s*package\s*:?\s*(\S+)", line))]


def _defaults(data: Any) -> list[tuple[str, list[str] | None]]:
    """A defaults list as (key, options) per entry: ``group@pkg: option`` or a list of options, and
    (name, None) for a plain config name (empty when the file has no defaults list)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("defaults"), list):
        return []
    out: list[tuple[str, list[str] | None]] = []
    for entry in data["defaults"]:
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                out.append((str(key), [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]))
        else:
            out.append((str(entry), None))
    return out


def _defaults_entries(data: Any) -> list[str]:
    """The group, package and config names a defaults list mentions: keys, the options they select,
    and plain entries."""
    return [text for key, options in _defaults(data) for text in (key, *(options or ()))]


def outside_path(name: str) -> bool:
    """Whether a config group option or defaults name could reach a file outside the scenario folders
    (Hydra joins ``group/option`` to each search path as given: ``..`` climbs out, ``\\`` and a
    ``~`` are not names)."""
    return ".." in name or "\\" in name or "~" in name or "\0" in name


@functools.lru_cache(maxsize=1024)
def _parsed_scenario_file(path: str, mtime_ns: int) -> tuple[Any, str | None, bool]:
    """(parsed YAML, problem, whether it declares ``# @package _global_``) of a scenario file (cached
    by path and modification time)."""

    try:
        text = read_text(path, "")
        data = parse_yaml(text)
    except ConfigError as exc:  # not UTF-8, not valid YAML (a python tag lands here too), an alias bomb
        return None, str(exc).removeprefix(": "), False
    return data, _scenario_problem(text, data), "_global_" in _package_headers(text)


def _scenario_problem(text: str, data: Any) -> str | None:
    package = next((p for p in _package_headers(text) if reaches_hydra(p)), None)
    if package is not None:
        return f"@package {package}: a scenario file cannot write into Hydra's own settings (they can name code to run or files to write)"
    if isinstance(data, Mapping) and "hydra" in data:
        return "hydra: Hydra's own settings are not allowed in a scenario file (they can name code to run)"
    entries = _defaults_entries(data)
    entry = next((e for e in entries if reaches_hydra(e)), None)
    if entry is not None:
        return f"defaults: {entry}: a scenario file cannot select or place configs in Hydra's own settings"
    entry = next((e for e in entries if outside_path(e)), None)
    if entry is not None:
        return f"defaults: {entry}: a defaults list names configs of the scenario folders only (no '..')"
    key = _code_key(data)
    return f"{key}: a config file cannot name code to import or run" if key else None


def _scenario_files() -> tuple[list[tuple[Path, Path]], dict[str, str]]:
    """Every ``*.yaml`` of the scenario roots as (root, path) for the regular files of at most
    ``MAX_CONFIG_BYTES``, and config name (``graph/friends``) -> problem for the others (a FIFO,
    a device, a huge file): those are never opened, and refused only where something selects them."""

    readable, unreadable = [], {}
    for root in scenario_dirs():
        for path in sorted(root.rglob("*.yaml")):
            problem = file_problem(path, MAX_CONFIG_BYTES)
            if problem is None:
                readable.append((root, path))
            else:
                unreadable.setdefault(path.relative_to(root).with_suffix("").as_posix(), f"{path}: {problem}")
    return readable, unreadable


def _defaults_names(data: Any, folder: str) -> set[str]:
    """The config names (``group/option``) a defaults list selects, absolute and relative to ``folder``."""
    names: set[str] = set()
    for key, options in _defaults(data):
        if options is None:
            pairs = [key.split("@")[0].strip()]
        else:
            group = re.sub(r"^(override|optional)\s+", "", key.strip()).split("@")[0]
            pairs = [f"{group}/{option}" for option in options]
        for name in pairs:
            names.add(name.lstrip("/"))
            if not name.startswith("/") and folder:
                names.add(f"{folder}/{name}")
    return names


def check_scenario_files(selected: Iterable[str] = ()) -> list[Path]:
    """Refuse scenario files that could make Hydra import or run code or write files: a ``hydra``
    section (callbacks, launchers, logging handlers), a ``# @package`` header or a defaults-list entry
    that places a config into Hydra's own settings, a ``_target_``-like key anywhere, or Hydra's own
    config groups (``hydra/``) in a folder of ``SIM_SCENARIO_PATH``; also files that are not UTF-8
    or not valid YAML (alias bombs and deep nesting included). Only the project's
    ``scenarios/sweep.yaml`` configures Hydra (its result collector).

    A ``*.yaml`` that is not a regular file of at most 1 MB (a FIFO, a link to ``/dev/zero``, a huge
    file) is never read: it is refused when ``selected`` (config names such as ``named/default``,
    ``graph/friends``) or a defaults list names it, and ignored otherwise.

    Returns the scenario files the selection reads (the first root's file of each selected name),
    which a run records with their content hashes."""
    roots = scenario_dirs()
    for root in roots[1:]:
        if (root / "hydra").exists():
            raise ConfigError(f"{root / 'hydra'}: scenario folders cannot hold Hydra's own config groups (they can name code to run)")
    readable, unreadable = _scenario_files()
    selects: dict[str, set[str]] = {}  # config name -> the names its defaults list selects
    headless: set[str] = set()  # config names whose file lacks '# @package _global_'
    for root, path in readable:
        if root == roots[0] and path == root / "sweep.yaml":
            continue
        data, problem, global_package = _parsed_scenario_file(str(path), path.stat().st_mtime_ns)
        if problem:
            raise ConfigError(f"{path}: {problem}")
        if not global_package:
            headless.add(path.relative_to(root).with_suffix("").as_posix())
        name = path.relative_to(root).with_suffix("").as_posix()
        selects.setdefault(name, set()).update(_defaults_names(data, path.parent.relative_to(root).as_posix().strip(".")))
    wanted, todo = set(), ["config", *selected]  # what the primary config and the overrides select, transitively
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(selects.get(name, ()))
    for name in sorted(wanted & set(unreadable)):
        raise ConfigError(f"{unreadable[name]}; a scenario file must be a regular YAML file of at most 1 MB")
    first: dict[str, Path] = {}
    for root, path in readable:
        first.setdefault(path.relative_to(root).with_suffix("").as_posix(), path)
    for name in sorted(wanted & headless):
        if name.split("/")[0] in SCENARIO_GROUPS:  # (graph and mechanism options are placed by their group)
            raise ConfigError(f"{first[name]}: a scenario file starts with the line '# @package _global_' (its keys are "
                              "set from the top of the configuration); add that line as its first")
    return [first[name] for name in sorted(wanted) if name in first]


def override_key(text: str) -> str:
    return text.split("=", 1)[0].lstrip("+~")


def effective_overrides(overrides: Sequence[str]) -> list[str]:
    """``overrides`` with each key once, at its first place and with its last value (the one that
    takes effect): ``[size=10000, horizon=120, size=5000]`` -> ``[size=5000, horizon=120]``."""
    last: dict[str, str] = {}
    for text in overrides:
        last[override_key(text)] = text
    return list(last.values())


def check_no_code(overrides: Sequence[str], hydra_allowed: Sequence[str] = ()) -> None:
    """Refuse overrides whose key names code (``_target_`` and the like), and overrides that reach
    Hydra's own settings (a key or a ``@package`` with a ``hydra`` segment), unless the key starts with
    one of ``hydra_allowed`` and places nothing elsewhere (sweeps allow the launcher and the sweep folder)."""
    groups = None  # the scenario folders' config groups, listed once if a key needs them
    for text in overrides:
        key = override_key(text)
        value = text.split("=", 1)[1] if "=" in text else ""
        parts = re.split(r"[./@]", key)
        bad = next((p for p in parts if p in CODE_KEYS), None) or next((k for k in CODE_KEYS if k != "()" and k in value), None)
        if bad:
            raise ConfigError(f"{key}: a setting cannot name code to import or run ({bad} keys are not allowed)")
        if outside_path(value) and ("/" in key or key in (groups := groups if groups is not None else _group_options())):
            raise ConfigError(f"{key} = {excerpt(value)}: a config group option names a file of the scenario folders (no '..')")
        if reaches_hydra(key) and ("@" in key or not any(key == a or key.startswith(a) for a in hydra_allowed)):
            allowed = ", ".join(hydra_allowed) if hydra_allowed else "none here (sweeps take hydra/launcher=NAME, hydra.launcher.* and hydra.sweep.dir)"
            raise ConfigError(f"{key}: Hydra setting not allowed; allowed: {allowed}")


def _group_options() -> dict[str, set[str]]:
    options: dict[str, set[str]] = {}
    for root in scenario_dirs():
        for path in root.rglob("*.yaml"):
            rel = path.relative_to(root)
            if len(rel.parts) >= 2:
                options.setdefault("/".join(rel.parts[:-1]), set()).add(path.stem)
    return options


def _register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema", node=defaults())


def compose_dict(scenario: str | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose a scenario with overrides into a plain dict (not yet validated)."""
    return _compose(scenario, overrides)[0]


def _compose(scenario: str | None, overrides: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """:func:`compose_dict`, and the scenario files the composition read (for provenance). Hydra
    composes a given set of scenario files and overrides once; later processes read its result back
    (:mod:`sim.compositions`)."""
    name_in_overrides, rest = _split(overrides)
    name = name_in_overrides or scenario or "default"
    check_no_code(rest)
    hydra_overrides = [scenario_override(name), *rest]
    files = check_scenario_files(selected_config_names(hydra_overrides))
    schema = defaults()
    _check_override_keys(rest, schema)
    extra = [r for r in scenario_dirs()[1:]]
    if extra:
        hydra_overrides.append("hydra.searchpath=[" + ",".join(f"file://{r}" for r in extra) + "]")
    name_of = compositions.key(_scenario_bytes(), hydra_overrides, schema)
    data = compositions.recall(name_of)
    if data is None:
        data = _hydra_compose(hydra_overrides, overrides)
        compositions.remember(name_of, data)
    data["scenario"] = name
    return data, [str(p) for p in files]


def _scenario_bytes() -> list[tuple[str, bytes]]:
    """Every readable scenario file as (root number/relative path, bytes): what Hydra may read for a
    run's configuration (not the project's ``sweep.yaml``, which configures Hydra's sweeps)."""
    roots = scenario_dirs()
    return [(f"{roots.index(root)}/{path.relative_to(root).as_posix()}", path.read_bytes())
            for root, path in _scenario_files()[0] if not (root == roots[0] and path == root / "sweep.yaml")]


def _hydra_compose(hydra_overrides: list[str], overrides: Sequence[str]) -> dict[str, Any]:
    """Hydra's composition of the primary config with ``hydra_overrides``, resolved, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    _register_schema()
    try:
        gh = GlobalHydra.instance()
        if gh.is_initialized():
            gh.clear()
        with initialize_config_dir(config_dir=str(scenario_dirs()[0]), version_base="1.3", job_name="sim"):
            cfg = compose(config_name="config", overrides=hydra_overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"overrides {clip(' '.join(overrides)) or '(none)'}: {clip(first, 300)}") from None
    try:  # interpolations resolve here: an unknown resolver or a missing key is one line too
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"{key + ': ' if key else ''}{first}") from None


def compose(scenario: str | None = None, overrides: Sequence[str] = (), seed: int | None = None,
            warn: bool = False) -> SimConfig:
    """Compose and validate: the one way a configuration is made from scenario files. ``warn``: say
    (once a process) which overrides set a key of a switched-off mechanism (for what a user typed;
    sweeps that vary such a key on purpose, a control, stay quiet)."""
    data, files = _compose(scenario, overrides)
    if seed is not None:
        data["seed"] = int(seed)
    cfg = validate(data)
    if warn:
        warn_settings_of_disabled(cfg, overrides)
    return with_sources(cfg, files)


_WARNED: set[str] = set()  # keys already warned about by this process


def settings_of_disabled(cfg: SimConfig, overrides: Sequence[str]) -> list[str]:
    """Overrides that set a key of a mechanism the configuration leaves switched off (they change
    nothing), as ``key=value`` texts."""
    quiet = []
    for ov in overrides:
        key = override_key(ov)
        parts = key.split(".")
        if len(parts) >= 3 and parts[0] == "mechanisms" and parts[2] != "enabled" and parts[1] in cfg.mechanisms:
            if not cfg.mechanisms[parts[1]].enabled:
                quiet.append(ov)
    return quiet


def warn_settings_of_disabled(cfg: SimConfig, overrides: Sequence[str]) -> None:
    """One ``warning:`` line per override that sets a switched-off mechanism's key (once a process)."""
    for ov in settings_of_disabled(cfg, overrides):
        key = override_key(ov)
        name = key.split(".")[1]
        if key not in _WARNED:
            _WARNED.add(key)
            print(f"warning: {ov} changes nothing: {name} is switched off in this scenario "
                  f"(add mechanisms.{name}.enabled=true to use it)", file=sys.stderr)


#: Attribute of a composed configuration that lists the scenario files it was read from (not a setting).
SOURCES = "_scenario_files"


def with_sources(cfg: SimConfig, files: Sequence[str]) -> SimConfig:
    """``cfg`` remembering the scenario files it was composed from (for provenance; not a setting:
    not in ``config.yaml``, not compared)."""
    object.__setattr__(cfg, SOURCES, tuple(files))
    return cfg


def input_files(cfg: SimConfig) -> list[str]:
    """Every file a run of ``cfg`` reads: the scenario files it was composed from and its edge list."""
    files = list(getattr(cfg, SOURCES, ()))
    if cfg.graph.kind == "edgelist" and cfg.graph.path:
        files.append(str(Path(cfg.graph.path).expanduser()))
    return files


def load_yaml(path: str | os.PathLike) -> SimConfig:
    """Validate a fully resolved ``config.yaml`` (for example from an earlier run folder)."""

    p = Path(path)
    if file_problem(p) == "no such file":
        raise ConfigError(f"{p}: no such config file")
    return validate(read_yaml(p) or {})


def dump_yaml(cfg: SimConfig) -> str:
    import yaml

    return yaml.safe_dump(to_plain(cfg), sort_keys=False, allow_unicode=True)
