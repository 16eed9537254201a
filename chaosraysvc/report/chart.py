"""Draw the traffic timeline of a run: requests per second, latency, faults and recovery.

Top panel: successful and failed requests per second (stacked), the outage and
recovery phases shaded, the longest failure window and the brownout marked. Bottom
panel: p50 and p99 latency of the successful requests. Every fault and recovery
milestone is a vertical line across both panels, named in the legend with its time.

Two time bases, both named: the lower axis counts from the traffic start (as every
"+" offset of the report), the upper axis from the first deletion (as the recovery
table); each milestone's legend entry gives both. Milestones at (nearly) the same time
are drawn with interleaved dashes, so each stays visible. The last second of traffic
is usually a partial one: it is not drawn as a bar (it would look like a drop) but
hatched and named in the legend.

Drawn with matplotlib's object API (no pyplot, so no global state and no display):
`timeline_svg` returns an SVG string to inline in HTML, `timeline_png` PNG bytes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from chaosraysvc.report.figures import RunFigures

__all__ = ["timeline_figure", "timeline_png", "timeline_svg"]

GREEN, RED, GREY = "#2e7d32", "#c62828", "#616161"
MILESTONE_STYLE = {
    "fault": ("#b71c1c", "-", "{role} pod deleted"),
    "pod_ready": ("#ef6c00", "--", "new {role} pod ready"),
    "endpoints_restored": ("#1565c0", "-.", "endpoints restored"),
    "applications_running": ("#2e7d32", ":", "applications RUNNING"),
    "primary_elected": ("#6a1b9a", "--", "new Redis primary named"),
    "gcs_reconnected": ("#6a1b9a", ":", "GCS on the new primary"),
    "node_not_ready": ("#4e342e", "--", "node NotReady"),
    "endpoints_dropped": ("#4e342e", ":", "its pods out of the serve Service"),
    "node_deleted": ("#4e342e", "-.", "Node deleted"),
}
PHASE_COLOURS = {"outage": "#ffcdd2", "recovery": "#ffe0b2"}
RC: dict[Any, Any] = {
    "text.parse_math": False,  # journal text such as "$x$" is text, never math
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _plain(value: float, _pos: int | None = None) -> str:
    return f"{value:g}"


DASH = 5.0  # points: one dash of a line sharing its place with others
NEAR = 0.006  # share of the time axis under which two milestone lines look as one


def _milestone_lines(figures: RunFigures) -> list[tuple[float, str, str, str]]:
    """Return (offset, colour, style, legend label) of every fault and milestone."""
    lines = []
    origin = figures.origin
    for fault in figures.faults:
        if fault.offset_s is None or fault.dry_run:
            continue
        role = fault.role or "?"
        colour, style, label = MILESTONE_STYLE["fault"]
        if "partition_redis" in (fault.func, fault.action):
            label = "Redis cut off from the Ray pods"
        if "hang_redis" in (fault.func, fault.action):
            label = "Redis paused (CLIENT PAUSE ALL)"
        if "lose_node" in (fault.func, fault.action):
            label = "the {role} pod's node lost"
        deleted = float(fault.offset_s)
        lines.append((deleted, colour, style, f"{label.format(role=role)} (+{deleted:.1f} s)"))
        if fault.ended_at is not None and origin is not None:  # a hang's end
            ended = float(fault.ended_at) - origin
            text = f"Redis answering again (+{ended:.1f} s) = pause + {ended - deleted:.1f} s"
            lines.append((ended, colour, "--", text))
        own = {**fault.failover_s, **fault.node_loss_s}
        for name, after_s in own.items():  # a Redis failover's or a node loss's own steps
            if name in MILESTONE_STYLE:
                colour, style, label = MILESTONE_STYLE[name]
                offset = deleted + after_s
                text = f"{label} (+{offset:.1f} s) = deletion + {after_s:.1f} s"
                lines.append((offset, colour, style, text))
        for name, at in fault.milestones_at.items():
            if name in MILESTONE_STYLE and origin is not None:
                colour, style, label = MILESTONE_STYLE[name]
                offset = at - origin
                after = fault.seconds_to.get(name)
                after = offset - deleted if after is None else after
                text = f"{label.format(role=role)} (+{offset:.1f} s) = deletion + {after:.1f} s"
                lines.append((offset, colour, style, text))
    return sorted(lines)


def _dashes(
    lines: list[tuple[float, str, str, str]], span: float
) -> list[str | tuple[float, tuple[float, float]]]:
    """Return each line's style: lines that would hide each other get interleaved dashes."""
    styles: list[str | tuple[float, tuple[float, float]]] = [line[2] for line in lines]
    groups: list[list[int]] = []
    for i, line in enumerate(lines):
        if groups and line[0] - lines[groups[-1][0]][0] <= NEAR * max(span, 1.0):
            groups[-1].append(i)
        else:
            groups.append([i])
    for group in groups:
        if len(group) < 2:
            continue
        gap = DASH * (len(group) - 1)
        for k, i in enumerate(group):
            styles[i] = (k * DASH, (DASH, gap))
    return styles


def _partial_last_second(timeline: list[dict[str, Any]], figures: RunFigures) -> float | None:
    """Return how much of the timeline's last one-second bucket the traffic covered.

    None when the bucket is whole or the traffic's duration is not known.
    """
    duration = figures.traffic.run.get("duration_s") if figures.traffic is not None else None
    if len(timeline) < 2 or not isinstance(duration, int | float):
        return None
    covered = float(duration) - float(timeline[-1]["second"])
    return covered if 0.0 <= covered < 0.999 else None


def _not_reached(figures: RunFigures) -> list[str]:
    words = {k: v[2] for k, v in MILESTONE_STYLE.items()}
    out = []
    for fault in figures.faults:
        if fault.recovered is False and fault.offset_s is not None:
            role = fault.role or "?"
            out += [words[m].format(role=role) for m in fault.missing]
    return out


def timeline_figure(timeline: list[dict[str, Any]], figures: RunFigures) -> Figure:
    """Return the timeline chart of one run (`timeline` from `stats.summarize`)."""
    seconds = [float(row["second"]) for row in timeline]
    edges = [*seconds, (seconds[-1] + 1.0) if seconds else 1.0]
    ok = [float(row["successes"]) for row in timeline]
    total = [float(row["successes"] + row["failures"]) for row in timeline]
    mid = [s + 0.5 for s in seconds]
    p50 = [math.nan if row["p50"] is None else float(row["p50"]) for row in timeline]
    p99 = [math.nan if row["p99"] is None else float(row["p99"]) for row in timeline]

    partial = _partial_last_second(timeline, figures)
    if partial is not None:  # a partial bucket drawn as a bar would look like a drop
        ok, total, edges = ok[:-1], total[:-1], edges[:-1]

    fig = Figure(figsize=(11, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    traffic = figures.traffic
    for phase in figures.phases:
        colour = PHASE_COLOURS.get(phase.name)
        if colour is None or phase.offset_s is None or phase.duration_s is None:
            continue
        start, end = phase.offset_s, phase.offset_s + phase.duration_s
        for ax in (top, bottom):
            ax.axvspan(start, end, color=colour, alpha=0.45, lw=0, zorder=0)
        top.text(
            start,
            1.0,
            f" {phase.name}",
            transform=top.get_xaxis_transform(),
            va="top",
            ha="left",
            fontsize=8,
            color=GREY,
        )
    if ok:
        top.stairs(ok, edges, fill=True, color=GREEN, alpha=0.85, label="successful requests / s")
        if any(t > o for t, o in zip(total, ok, strict=True)):
            top.stairs(total, edges, baseline=ok, fill=True, color=RED, label="failed requests / s")
    if partial is not None:
        last = seconds[-1]
        top.axvspan(
            last,
            last + 1.0,
            facecolor="none",
            edgecolor="#9e9e9e",
            hatch="..",
            lw=0,
            label=f"last second: traffic stopped {partial:.2f} s into it, not drawn as a bar",
        )
    window = traffic.longest_failure_window if traffic is not None else None
    if window and window.offset_s is not None and window.duration_s is not None:
        top.axvspan(
            window.offset_s,
            window.offset_s + max(window.duration_s, 0.2),
            color=RED,
            alpha=0.18,
            lw=0,
            label=f"longest failure window ({window.duration_s:.1f} s)",
        )
    brownout = traffic.brownout if traffic is not None else None
    if traffic and brownout and brownout.offset_s is not None and brownout.duration_s is not None:
        ratio = int(round(100 * float(traffic.brownout_ratio or 0.5)))
        top.axvspan(
            brownout.offset_s,
            brownout.offset_s + brownout.duration_s,
            facecolor="none",
            edgecolor=GREY,
            hatch="///",
            lw=0,
            label=f"brownout (< {ratio} % of baseline, {brownout.duration_s:.0f} s)",
        )
    top.set_ylabel("requests per second")
    top.set_ylim(bottom=0)
    top.margins(x=0)

    bottom.plot(mid, p50, color="#1565c0", lw=1.2, label="latency p50")
    bottom.plot(mid, p99, color="#6a1b9a", lw=1.0, label="latency p99")
    finite = [v for v in p50 + p99 if not math.isnan(v) and v > 0]
    if finite and max(finite) / min(finite) > 30:
        bottom.set_yscale("log")
        bottom.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_major_formatter(FuncFormatter(_plain))
        bottom.yaxis.set_minor_formatter(NullFormatter())
    else:
        bottom.set_ylim(bottom=0)
    bottom.set_ylabel("latency (ms, successes)")
    started = figures.about.started
    origin_label = figures.origin_label
    bottom.set_xlabel(
        f"seconds since {origin_label}" + (f" (run started {started})" if started else "")
    )
    deletion = figures.deletion_offset_s
    if isinstance(deletion, int | float):
        shift = float(deletion)
        upper = top.secondary_xaxis("top", functions=(lambda x: x - shift, lambda x: x + shift))
        upper.set_xlabel(f"seconds since {figures.deletion_label or 'the deletion'}")

    lines = _milestone_lines(figures)
    span = (edges[-1] - edges[0]) if len(edges) > 1 else 1.0
    for (offset, colour, style, label), drawn in zip(lines, _dashes(lines, span), strict=True):
        for ax in (top, bottom):
            ax.axvline(offset, color=colour, ls=drawn, lw=1.6, zorder=5, gid=f"milestone {label}")
        top.plot([], [], color=colour, ls=style, lw=1.6, label=label)
    missing = _not_reached(figures)
    if missing:
        top.plot([], [], color="none", label="never reached: " + ", ".join(missing))
    for ax in (top, bottom):
        ax.grid(axis="y", color="#e0e0e0", lw=0.6)
        ax.set_axisbelow(True)
    handles, labels = top.get_legend_handles_labels()
    more, more_labels = bottom.get_legend_handles_labels()
    if not seconds:
        top.text(0.5, 0.5, "no requests in the traffic log", transform=top.transAxes, ha="center")
    fig.legend(
        handles + more,
        labels + more_labels,
        loc="outside lower center",
        ncol=3,
        frameon=False,
        fontsize=8,
        handlelength=2.6,
    )
    return fig


def _save(fig: Figure, fmt: str, salt: str) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": salt}):
        metadata = {"Date": None} if fmt == "svg" else {}
        fig.savefig(buf, format=fmt, dpi=110, metadata=metadata)
    return buf.getvalue()


def _draw(timeline: list[dict[str, Any]], figures: RunFigures) -> Figure:
    with matplotlib.rc_context(RC):
        return timeline_figure(timeline, figures)


def timeline_svg(timeline: list[dict[str, Any]], figures: RunFigures) -> str:
    """Return the chart as an `<svg>` element to inline in HTML (ids unique per run)."""
    data = _save(_draw(timeline, figures), "svg", figures.id)
    text = data.decode("utf-8")
    return text[text.index("<svg") :]


def timeline_png(timeline: list[dict[str, Any]], figures: RunFigures) -> bytes:
    """Return the chart as PNG bytes (for Markdown reports)."""
    return _save(_draw(timeline, figures), "png", figures.id)
