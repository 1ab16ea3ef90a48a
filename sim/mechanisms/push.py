"""Push notifications (推送): a nudge to open the app, paid for in fatigue.

What it models: every user who has not opted out receives ``per_day`` notifications a day on
average (a fractional rate is spread over days). Each push raises today's visit log-odds, by
``relevant_uplift`` if its content matches the user's taste and by ``irrelevant_uplift`` if not;
several pushes on one day add up with diminishing effect (each further one counts ``repeat_decay``
times the previous). Push content is relevant with chance ``relevance``, or, when the
recommendations mechanism is on, with the chance its strategy matches the user's taste (personalised
recommendation makes pushes relevant). Every push adds fatigue (irrelevant ones ``irrelevant_fatigue``
times as much); fatigue decays by ``fatigue_decay`` a day and damps the effect of further pushes.
Past ``tolerance`` users opt out of notifications at a daily rate that grows with the excess
(``optout_rate``), and a share ``uninstall_share`` of those who opt out uninstall the app (churn).
Irrelevant pushes also cost satisfaction, which lowers visits and raises churn everywhere.

With these ingredients a moderate frequency raises daily active users; a high one burns the base:
an interior optimum in the frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import kernels
from sim.compiled import jit
from sim.mechanisms.base import Mechanism, MechanismConfig, register
from sim.schema import param


@dataclass(frozen=True)
class PushConfig(MechanismConfig):
    per_day: float = param(1.0, lo=0, hi=50, unit="notifications per user per day", doc="push frequency")
    relevance: float = param(0.3, lo=0, hi=1, unit="probability", doc="chance a push matches the user's taste (used when the recommendations mechanism is off)")
    relevant_uplift: float = param(1.0, lo=0, hi=10, unit="log-odds", doc="visit log-odds added by a relevant push to a rested user")
    irrelevant_uplift: float = param(0.5, lo=0, hi=10, unit="log-odds", doc="visit log-odds added by an irrelevant push to a rested user")
    repeat_decay: float = param(0.6, lo=0, hi=1, unit="multiplier", doc="each further push on the same day counts this much of the previous one")
    fatigue_decay: float = param(0.85, lo=0, hi=1, unit="fraction kept per day", doc="how much fatigue remains after a day")
    irrelevant_fatigue: float = param(2.0, lo=0, hi=20, unit="multiplier", doc="fatigue added by an irrelevant push relative to a relevant one")
    fatigue_damping: float = param(0.05, lo=0, hi=10, unit="per unit fatigue", doc="effect of a push x exp(-fatigue_damping x fatigue)")
    tolerance: float = param(15.0, lo=0, hi=1e6, lo_open=True, unit="fatigue", doc="fatigue beyond which users start to opt out")
    optout_rate: float = param(0.02, lo=0, hi=1, unit="probability per day per unit of excess fatigue / tolerance", doc="daily opt-out chance per relative excess of fatigue over tolerance")
    uninstall_share: float = param(0.3, lo=0, hi=1, unit="fraction", doc="share of opt-outs who uninstall the app (churn)")
    annoyance: float = param(0.001, lo=0, hi=1, unit="satisfaction per push", doc="satisfaction lost per irrelevant push")


@register
class Push(Mechanism):
    name = "push"
    Config = PushConfig
    columns = ("pushes_sent", "push_optouts", "push_uninstalls", "push_opted_out_users")

    def setup(self, model) -> None:
        self.fatigue = model.pop.add_column("push_fatigue", np.float32)
        self.opted_out = model.pop.add_column("push_opted_out", np.bool_)
        self.weights: dict[int, np.ndarray] = {}  # by the most pushes anyone gets in a day

    def _weight(self, top: int) -> np.ndarray:
        """Total weight of k = 0 .. ``top`` pushes on one day: pushes in a day add up with diminishing
        effect, relevant ones first: (1 - d^k) / (1 - d) for k pushes."""
        w = self.weights.get(top)
        if w is None:
            d = self.config.repeat_decay
            k = np.arange(top + 1, dtype=np.float64)
            w = self.weights[top] = k if d >= 1 else (1.0 - d ** k) / (1.0 - d)
        return w

    def _relevance(self, model, users: np.ndarray) -> np.ndarray:
        """Chance a push matches each user's taste: as the recommender chooses, else ``relevance``."""
        for m in model.mechanisms:
            rate = m.relevance_rate(model, users)
            if rate is not None:
                return rate
        return np.full(users.size, self.config.relevance)

    def visit(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        kernels.fade(self.fatigue, np.float32(c.fatigue_decay))
        if c.per_day <= 0:
            return
        rng = self.rng(model)
        users = _reachable(pop.user_index, self.opted_out)
        sent, n, total, top, x = _schedule(users, c.per_day, rng.random(users.size), self.fatigue,
                                           np.float32(-c.fatigue_damping))
        p = self._relevance(model, sent)
        u = rng.random(total)  # one uniform per push
        # Damped by the fatigue carried in from earlier days.
        effects = (self._weight(top), c.relevant_uplift, c.irrelevant_uplift, c.irrelevant_fatigue, c.annoyance)
        _deliver((sent, n, p, np.exp(x)), u, (self.fatigue, today.visit_boost, pop.satisfaction), effects)
        today.count("pushes_sent", total)

    def retention(self, model) -> None:
        c, pop, today = self.config, model.pop, model.today
        tolerance = np.float32(c.tolerance)
        users, opted = _tired(pop.user_index, self.opted_out, self.fatigue, tolerance)
        if users.size:
            rng = self.rng(model)
            out = _opt_out(users, rng.random(users.size), self.fatigue, tolerance, np.float32(c.optout_rate), self.opted_out)
            gone = out[rng.random(out.size) < c.uninstall_share]
            model.churn(gone)
            today.count("push_optouts", out.size)
            today.count("push_uninstalls", gone.size)
            opted += out.size  # the users of today who opted out: none had before
        today.count("push_opted_out_users", opted)

# ====================================================================================== compiled passes
@jit
def _deliver(pushes, u, columns, effects):
    """Today's ``pushes`` (sent, n, p, damp) to the distinct users ``sent``: ``n[i]`` pushes to ``sent[i]``, each relevant
    when its uniform (the next of ``u``, in order) is below ``p[i]`` (so the relevant count is
    Binomial(n, p): sums of n Bernoulli trials, one uniform each, some ten times faster
    than ``rng.binomial`` on a few pushes a day each). Adds the visit log-odds (``weight`` of the
    relevant and of all pushes, damped by ``damp``), the fatigue and the annoyance of irrelevant
    pushes (satisfaction kept within [0, 1]) to the ``columns`` (fatigue, visit_boost, satisfaction),
    with the ``effects`` (weight, relevant_uplift, irrelevant_uplift, irrelevant_fatigue, annoyance).
    Returns the number of relevant pushes per user."""
    sent, n, p, damp = pushes
    fatigue, visit_boost, satisfaction = columns
    weight, relevant_uplift, irrelevant_uplift, irrelevant_fatigue, annoyance = effects
    relevant = np.empty(sent.size, dtype=np.int64)
    j = 0
    for i in range(sent.size):
        k = n[i]
        rel = 0
        for _ in range(k):
            if u[j] < p[i]:
                rel += 1
            j += 1
        irr = k - rel
        relevant[i] = rel
        w_rel = weight[rel]
        w_irr = weight[k] - w_rel
        person = sent[i]
        visit_boost[person] += np.float32(damp[i] * (relevant_uplift * w_rel + irrelevant_uplift * w_irr))
        fatigue[person] += np.float32(rel + irrelevant_fatigue * irr)
        s = satisfaction[person] + np.float32(-annoyance * irr)
        satisfaction[person] = min(max(s, np.float32(0.0)), np.float32(1.0))
    return relevant


@jit
def _reachable(users, opted_out):
    """The users who have not opted out of notifications, in order (one pass instead of a gather, a
    negation and a mask)."""
    out = np.empty(users.size, dtype=np.int64)
    m = 0
    for i in users:
        if not opted_out[i]:
            out[m] = i
            m += 1
    return out[:m]


@jit
def _schedule(users, per_day, u, fatigue, neg_damping32):
    """How many pushes each of ``users`` gets today, ``floor(per_day + u)`` (the stochastic rounding
    of ``sim.behaviour.stochastic_round``), kept for those who get any: returns them, their counts,
    the total, the largest count and the exponent of their fatigue damping ``neg_damping32 x
    fatigue`` in float32 as numpy computes it (its ``exp`` is left to numpy). One pass instead of
    some ten numpy calls."""
    sent = np.empty(users.size, dtype=np.int64)
    n = np.empty(users.size, dtype=np.int64)
    x = np.empty(users.size, dtype=np.float32)
    m = total = top = 0
    for k in range(users.size):
        c = np.int64(np.floor(per_day + u[k]))
        if c > 0:
            i = users[k]
            sent[m] = i
            n[m] = c
            x[m] = neg_damping32 * fatigue[i]
            m += 1
            total += c
            top = max(top, c)
    return sent[:m], n[:m], total, top, x[:m]


@jit
def _tired(users, opted_out, fatigue, tolerance32):
    """The users who have not opted out and whose fatigue is above ``tolerance32`` (float32, as numpy
    compares the column with it), in order, and how many users have opted out: one pass instead of
    some eight numpy calls."""
    out = np.empty(users.size, dtype=np.int64)
    m = opted = 0
    for i in users:
        if opted_out[i]:
            opted += 1
        elif fatigue[i] > tolerance32:
            out[m] = i
            m += 1
    return out[:m], opted


@jit
def _opt_out(users, u, fatigue, tolerance32, rate32, opted_out):
    """Of ``users``, those whose uniform ``u`` is below ``min(1, rate32 x (fatigue / tolerance32 - 1))``
    (in float32, as numpy computes it) opt out: returns them, in order."""
    out = np.empty(users.size, dtype=np.int64)
    m = 0
    one = np.float32(1.0)
    for k in range(users.size):
        i = users[k]
        q = min(one, rate32 * (fatigue[i] / tolerance32 - one))
        if u[k] < np.float64(q):
            opted_out[i] = True
            out[m] = i
            m += 1
    return out[:m]
