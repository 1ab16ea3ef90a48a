"""Charts of the dashboard as ECharts options: pure functions of a run's frames.

The page draws them with Solara's ECharts component (ECharts ships with Solara's assets, so no
network is needed). An option is plain JSON: numbers, lists and dicts; missing values are None.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.vocabulary import STATE_NAMES

INK = "#1d2733"
MUTED = "#5b6b7b"
COLOURS = {"users": "#1f5fa8", "cumulative": "#8fb3dc", "new": "#2a9d8f", "dau": "#e76f51", "mau": "#264653",
           "stickiness": "#8d5fd3", "retention": "#1f5fa8", "profit": "#264653", "cumulative_profit": "#2a9d8f",
           "revenue": "#5aa36a", "costs": "#e9a23b"}
STRATEGY_COLOURS = ["#1f5fa8", "#e07a1f", "#2a9d8f", "#9d0208"]
STATE_COLOURS = {"potential": "#d5dae0", "aware": "#9ec3ea", "active": "#1f77b4", "loyal": "#2ca02c",
                 "dormant": "#f0a030", "churned": "#d62728"}


def _clean(values) -> list:
    """Numbers as JSON (NaN and infinities become None)."""
    a = np.asarray(values, dtype=float)
    return [None if not np.isfinite(v) else round(float(v), 6) for v in a]


def _xy(x, y) -> list:
    return [[xv, yv] for xv, yv in zip(_clean(x), _clean(y))]


def _axis(name: str, **extra) -> dict[str, Any]:
    return {"type": "value", "name": name, "nameLocation": "middle", "nameGap": 46, "nameRotate": 90,
            "nameTextStyle": {"color": MUTED}, "axisLine": {"show": True, "lineStyle": {"color": "#aab4bf"}},
            "splitLine": {"lineStyle": {"color": "#eef1f4"}}, "scale": False, **extra}


def _base(title: str, xname: str, horizon: int | None, y: list[dict], series: list[dict], legend: bool = True) -> dict[str, Any]:
    x = {"type": "value", "name": xname, "nameLocation": "middle", "nameGap": 26, "nameTextStyle": {"color": MUTED},
         "min": 0, "axisLine": {"lineStyle": {"color": "#aab4bf"}}, "splitLine": {"show": False}}
    if horizon:
        x["max"] = horizon - 1
    return {
        "animation": False,
        "title": {"text": title, "left": 6, "top": 2, "textStyle": {"fontSize": 14, "fontWeight": 600, "color": INK}},
        "tooltip": {"trigger": "axis", "valueFormatter": None},
        "legend": {"show": legend, "top": 26, "left": 6, "itemWidth": 18, "itemHeight": 8, "textStyle": {"fontSize": 11, "color": MUTED}},
        "grid": {"left": 62, "right": 62 if len(y) > 1 else 18, "top": 66, "bottom": 42},
        "xAxis": x,
        "yAxis": y,
        "series": series,
    }


def _line(name: str, x, y, colour: str, width: float = 2.0, axis: int = 0, dash: str | None = None) -> dict[str, Any]:
    return {"type": "line", "name": name, "data": _xy(x, y), "showSymbol": False, "yAxisIndex": axis, "color": colour,
            "lineStyle": {"width": width, "type": dash or "solid"}, "connectNulls": False}


def smooth(x: pd.Series, days: int = 7) -> pd.Series:
    return x.rolling(days, min_periods=1).mean()


def growth(daily: pd.DataFrame, horizon: int | None = None) -> dict[str, Any]:
    d = daily["day"]
    return _base("Growth: users", "day", horizon,
                 [_axis("people"), _axis("new people per day", splitLine={"show": False})],
                 [_line("ever joined", d, daily["cumulative_users"], COLOURS["cumulative"]),
                  _line("users now (not churned)", d, daily["users"], COLOURS["users"], 2.5),
                  _line("new per day, 7-day mean (right)", d, smooth(daily["new_users"]), COLOURS["new"], 1.5, axis=1, dash="dashed")])


def activity(daily: pd.DataFrame, horizon: int | None = None) -> dict[str, Any]:
    d = daily["day"]
    ratio = np.where(daily["mau"] > 0, daily["dau"] / daily["mau"].where(daily["mau"] > 0, 1), np.nan)
    return _base("Activity: DAU, MAU and stickiness", "day", horizon,
                 [_axis("people"), _axis("DAU/MAU (%)", splitLine={"show": False})],
                 [_line("MAU", d, daily["mau"], COLOURS["mau"], 2.5),
                  _line("DAU", d, daily["dau"], COLOURS["dau"], 1.5),
                  _line("DAU/MAU % (right)", d, 100 * ratio, COLOURS["stickiness"], 1.5, axis=1, dash="dashed")])


def retention(curve: np.ndarray) -> dict[str, Any]:
    ages = np.arange(curve.size)
    ok = np.isfinite(curve) & (curve > 0) & (ages >= 1)
    series = [_line("day-N retention", ages[ok], 100 * curve[ok], COLOURS["retention"])]
    series[0].update(showSymbol=True, symbolSize=4)
    y = _axis("% of cohort visiting (log scale)", type="log", logBase=10)
    option = _base("Retention: cohort visiting N days after joining", "days since joining", None, [y], series, legend=False)
    option["xAxis"]["min"] = 1
    option["grid"]["top"] = 44
    return option


def money(daily: pd.DataFrame, horizon: int | None = None) -> dict[str, Any]:
    d = daily["day"]
    costs = daily["incentive_cost"] + daily["acquisition_cost"] + daily["fraud_loss"]
    option = _base("Money: profit = revenue − costs", "day", horizon,
                 [_axis("RMB per day (7-day mean)", scale=True, nameGap=50),
                  _axis("cumulative profit (RMB)", scale=True, nameGap=66, splitLine={"show": False})],
                 [_line("revenue/day", d, smooth(daily["revenue"]), COLOURS["revenue"], 1.3),
                  _line("costs/day", d, smooth(costs), COLOURS["costs"], 1.3),
                  _line("profit/day", d, smooth(daily["profit"]), COLOURS["profit"], 2.0),
                  _line("cumulative profit (right)", d, daily["profit"].cumsum(), COLOURS["cumulative_profit"], 2.5, axis=1, dash="dashed")])
    option["grid"].update(left=70, right=84)
    return option


def graph_view(xy: np.ndarray, edges: np.ndarray, states: np.ndarray, day: int) -> dict[str, Any]:
    """The graph sample with people coloured by lifecycle state on ``day`` (fixed layout).

    Friendships are one line series broken by gaps; people are one scatter series per state."""
    counts = np.bincount(states.astype(np.int64), minlength=len(STATE_NAMES))
    segments: list = []
    for a, b in edges:
        segments += [[round(float(xy[a, 0]), 4), round(float(xy[a, 1]), 4)], [round(float(xy[b, 0]), 4), round(float(xy[b, 1]), 4)], None]
    series: list[dict[str, Any]] = [{"type": "line", "name": "friendship", "data": segments, "showSymbol": False, "connectNulls": False,
                                     "lineStyle": {"color": "#7d8a97", "opacity": 0.35, "width": 0.7}, "silent": True,
                                     "tooltip": {"show": False}, "z": 1}]
    for k, name in enumerate(STATE_NAMES):
        sel = states == k
        series.append({"type": "scatter", "name": f"{name} ({int(counts[k])})", "data": _xy(xy[sel, 0], xy[sel, 1]),
                       "symbolSize": 7, "itemStyle": {"color": STATE_COLOURS[name], "borderColor": "#ffffff", "borderWidth": 0.6},
                       "z": 2, "tooltip": {"show": False}})
    hidden = {"type": "value", "show": False, "scale": True}
    return {
        "animation": False,
        "title": {"text": f"Social graph: {len(xy)} people around an early user, day {day}", "left": 6, "top": 2,
                  "textStyle": {"fontSize": 14, "fontWeight": 600, "color": INK}},
        "legend": {"data": [s["name"] for s in series[1:]], "orient": "vertical", "right": 8, "top": 40,
                   "textStyle": {"fontSize": 12, "color": INK}},
        "grid": {"left": 10, "right": 150, "top": 34, "bottom": 10},
        "xAxis": hidden, "yAxis": dict(hidden),
        "series": series,
    }


def band_chart(data: pd.DataFrame, labels: list[str], title: str, ytitle: str, xtitle: str = "day",
               percent: bool = False, log: bool = False) -> dict[str, Any]:
    """Mean curves with 95 % interval bands, one colour per strategy.

    A band is the lower bound (invisible) with the width of the interval stacked on it and
    filled; stacking needs a category x axis (ECharts stacks along the first value axis)."""
    scale = 100.0 if percent else 1.0
    xs = np.unique(data["x"].to_numpy())
    if log:
        xs = xs[xs >= 1]
    series = []
    for k, (colour, label) in enumerate(zip(STRATEGY_COLOURS, labels)):
        d = data[data["strategy"] == label].set_index("x").reindex(xs)
        mean, lo, hi = (scale * d[c].to_numpy(dtype=float) for c in ("mean", "lo", "hi"))
        if log:
            ok = (lo > 0) & (mean > 0)
            mean, lo, hi = np.where(mean > 0, mean, np.nan), np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)
        stack = f"band{k}"
        series.append({"type": "line", "name": f"{label} interval", "data": _clean(lo), "stack": stack, "stackStrategy": "all", "showSymbol": False,
                       "lineStyle": {"opacity": 0}, "silent": True, "color": colour, "tooltip": {"show": False}})
        series.append({"type": "line", "name": f"{label} interval", "data": _clean(hi - lo), "stack": stack, "stackStrategy": "all", "showSymbol": False,
                       "lineStyle": {"opacity": 0}, "areaStyle": {"color": colour, "opacity": 0.2}, "silent": True,
                       "color": colour, "tooltip": {"show": False}})
        series.append({"type": "line", "name": label, "data": _clean(mean), "showSymbol": False, "color": colour,
                       "lineStyle": {"width": 2.2}})
    option = _base(title, xtitle, None, [_axis(ytitle, **({"type": "log"} if log else {}))], series)
    option["xAxis"] = {"type": "category", "data": [int(x) for x in xs], "name": xtitle, "nameLocation": "middle", "nameGap": 26,
                       "boundaryGap": False, "nameTextStyle": {"color": MUTED}, "axisLine": {"lineStyle": {"color": "#aab4bf"}},
                       "axisTick": {"show": False}}
    option["legend"]["data"] = list(labels)
    option["tooltip"] = {"trigger": "axis"}
    return option


def difference_chart(sets: list[dict[str, Any]], title: str, unit: str) -> dict[str, Any]:
    """Paired differences of a metric, one row per set (``{"set", "values", "mean", "low", "high"}``,
    e.g. with the assumptions drawn and with noise only): each replicate's difference as a dot, the
    95 % interval of the mean as a wide light bar, the mean as a dark tick; a line at zero."""
    names = [s["set"] for s in sets]
    series: list[dict[str, Any]] = []
    for k, s in enumerate(sets):
        colour = STRATEGY_COLOURS[1]
        light = 0.45 if k else 0.22  # the wider interval (drawn first) lighter
        series.append({"type": "line", "name": f"{s['set']} interval", "data": [[_clean([s["low"]])[0], k], [_clean([s["high"]])[0], k]],
                       "showSymbol": False, "silent": True, "color": colour, "lineStyle": {"width": 18, "opacity": light, "cap": "butt"},
                       "tooltip": {"show": False}, "z": 1})
        series.append({"type": "scatter", "name": f"{s['set']} replicates", "data": [[v, k] for v in _clean(s["values"]) if v is not None],
                       "symbolSize": 7, "itemStyle": {"color": "#ffffff", "borderColor": INK, "borderWidth": 1}, "z": 3})
        series.append({"type": "scatter", "name": f"{s['set']} mean", "data": [[_clean([s["mean"]])[0], k]], "symbol": "rect",
                       "symbolSize": [3, 24], "itemStyle": {"color": INK}, "z": 4})
    series[0]["markLine"] = {"silent": True, "symbol": "none", "data": [{"xAxis": 0}], "label": {"show": False},
                             "lineStyle": {"color": MUTED, "type": "dashed", "width": 1}}
    return {
        "animation": False,
        "title": {"text": title, "left": 6, "top": 2, "textStyle": {"fontSize": 14, "fontWeight": 600, "color": INK}},
        "tooltip": {"trigger": "item"},
        "grid": {"left": 120, "right": 24, "top": 40, "bottom": 42},
        "xAxis": {**_axis(unit, scale=True), "nameLocation": "middle", "nameGap": 26, "nameRotate": 0},
        "yAxis": {"type": "category", "data": names, "inverse": True, "axisTick": {"show": False},
                  "axisLine": {"lineStyle": {"color": "#aab4bf"}}, "axisLabel": {"color": INK}},
        "series": series,
    }
