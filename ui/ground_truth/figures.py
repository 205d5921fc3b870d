"""Figures of the Ground truth page: pure builders (results -> plotly figures), no Streamlit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.diffusion.mixture import GaussianMixture
from core.labs.ground_truth.accuracy import AccuracyTable, MomentErrors
from core.labs.ground_truth.likelihood import TRUSTED, HeldOutNLL, Panel
from core.labs.ground_truth.memorisation import Nearness
from core.labs.ground_truth.mixtures import grid, view_box
from core.labs.ground_truth.probe import Probe, ProbePath
from ui.common.charts import CLASS_COLORS, LOG_AXIS, MARGIN, play_controls
from ui.common.tables import ABSENT

DENSITY_SCALE = "Viridis"
MORE_COLORS = (*CLASS_COLORS, "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")  # one per sampler (15)
LOG_FLOOR = -12.0  # log densities are shown down to this many nats: far tails would swamp the colour scale


def _square(fig: go.Figure, lo: Sequence[float], hi: Sequence[float], panels: int = 1) -> None:
    """Fixed ranges and equal units on both axes (a round blob looks round) in each of `panels` side-by-side plots."""
    for i in range(1, panels + 1):
        n = "" if i == 1 else str(i)
        fig.update_layout(
            {
                f"xaxis{n}": {"range": [lo[0], hi[0]], "constrain": "domain"},
                f"yaxis{n}": {"range": [lo[1], hi[1]], "scaleanchor": f"x{n}", "constrain": "domain"},
            }
        )


def _heat(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, zmin: float, zmax: float, name: str, bar: bool) -> go.Heatmap:
    return go.Heatmap(
        x=xs,
        y=ys,
        z=np.round(z, 3),
        zmin=zmin,
        zmax=zmax,
        colorscale=DENSITY_SCALE,
        name=name,
        showscale=bar,
        colorbar={"title": {"text": "log p", "side": "right"}, "thickness": 12} if bar else None,
        hovertemplate="x %{x:.2f}, y %{y:.2f}<br>log p %{z:.3f}<extra>" + name + "</extra>",
    )


def log_density_grid(mix: GaussianMixture, sigma: float, lo, hi, size: int = 80):
    """Axes and the [size, size] exact log density of the mixture blurred by `sigma`."""
    xs, ys, pts = grid(lo, hi, size)
    return xs, ys, mix.log_prob(pts, sigma).reshape(size, size).numpy()


def mixture_figure(mix: GaussianMixture, title: str, height: int = 340) -> go.Figure:
    lo, hi = view_box(mix)
    xs, ys, z = log_density_grid(mix, 0.0, lo.tolist(), hi.tolist())
    top = float(z.max())
    fig = go.Figure(_heat(xs, ys, z, max(top + LOG_FLOOR, float(z.min())), top, "exact", True))
    means = mix.means.numpy()
    fig.add_trace(
        go.Scatter(
            x=means[:, 0],
            y=means[:, 1],
            mode="markers",
            name="means",
            marker={"symbol": "x", "color": "white", "size": 9},
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        height=height, margin={**MARGIN, "t": 30}, title={"text": title, "font": {"size": 13}}, showlegend=False
    )
    _square(fig, lo.tolist(), hi.tolist())
    return fig


# ---- sampler accuracy -------------------------------------------------------------------------------------


def accuracy_figure(table: AccuracyTable, height: int = 460) -> go.Figure:
    """Error against NFE on log-log axes, one line per sampler, its fitted order in the legend; stochastic
    samplers (strong error) dashed."""
    fig = go.Figure()
    for i, row in enumerate(table.rows):
        order = row.order
        fitted = "n/a" if order is None else f"{order:.2f}"
        name = (
            f"{row.title}: strong order {fitted}"
            if row.stochastic
            else f"{row.title}: order {fitted} (theory {row.theory})"
        )
        fig.add_trace(
            go.Scatter(
                x=row.nfes,
                y=row.errors,
                mode="lines+markers",
                name=name,
                line={"color": MORE_COLORS[i % len(MORE_COLORS)], "dash": "dash" if row.stochastic else "solid"},
                hovertemplate="NFE %{x}<br>error %{y:.3g}<extra>" + row.title + "</extra>",
            )
        )
    fig.update_xaxes(title="denoiser evaluations (NFE)", **LOG_AXIS)
    fig.update_yaxes(title="RMS error", type="log", exponentformat="power", dtick=1)
    fig.update_layout(height=height, margin={**MARGIN, "t": 20}, legend={"font": {"size": 11}})
    return fig


def accuracy_rows(table: AccuracyTable) -> list[dict[str, object]]:
    rows = []
    for row in table.rows:
        cells: dict[str, object] = {
            "Sampler": row.title,
            "Measured against": "its own 1,000-NFE run, same Brownian path" if row.stochastic else "the exact ODE",
            "Order (theory)": "strong: -" if row.stochastic else str(row.theory),
            "Order (fitted)": None if row.order is None else round(row.order, 2),
        }
        cells |= {f"≤ {b} NFE": float(f"{e:.3g}") for b, e in zip(table.budgets, row.errors, strict=True)}
        rows.append(cells)
    return rows


def moment_rows(table: AccuracyTable, index: int) -> list[dict[str, object]]:
    """Mass, mean and variance errors (the component furthest out in standard errors) at NFE budget `index`."""

    def cells(title: str, nfe: object, m: MomentErrors) -> dict[str, object]:
        parts = {"mass": m.mass, "mean": m.mean, "variance": m.variance}
        return {
            "Sampler": title,
            "NFE": str(nfe),
            **{f"{name.capitalize()} error": f"{v.error:.4f} ± {v.se:.4f}" for name, v in parts.items()},
            "Beyond chance": ", ".join(name for name, v in parts.items() if v.resolved) or ABSENT,
        }

    rows = [cells("Exact draws (chance alone)", ABSENT, table.exact_moments)]
    rows += [cells(r.title, r.nfes[index], r.moments[index]) for r in table.rows if index < len(r.moments)]
    return rows


# ---- trajectory probe -----------------------------------------------------------------------------------------


def probe_box(mix: GaussianMixture, paths: Sequence[ProbePath]) -> tuple[list[float], list[float]]:
    lo, hi = view_box(mix)
    pts = np.concatenate([p.points for p in paths])
    lo = np.minimum(lo.numpy(), pts.min(0))
    hi = np.maximum(hi.numpy(), pts.max(0))
    pad = 0.05 * (hi - lo).max()
    return (lo - pad).tolist(), (hi + pad).tolist()


def pick_figure(mix: GaussianMixture, sigma: float, start: Sequence[float], grid_side: int = 28) -> go.Figure:
    """The exact density at noise level sigma with a grid of clickable dots, and the start marked."""
    lo, hi = view_box(mix, pad=3.0)
    lo = (lo - 2 * sigma).tolist()
    hi = (hi + 2 * sigma).tolist()
    xs, ys, z = log_density_grid(mix, sigma, lo, hi, 60)
    top = float(z.max())
    fig = go.Figure(_heat(xs, ys, z, top + LOG_FLOOR, top, f"p at sigma {sigma:g}", False))
    gx, gy, _ = grid(lo, hi, grid_side)
    mx, my = np.meshgrid(gx, gy)
    fig.add_trace(
        go.Scatter(
            x=mx.ravel(),
            y=my.ravel(),
            mode="markers",
            name="pick",
            marker={"size": 7, "color": "rgba(255,255,255,0.25)"},
            hovertemplate="start here: (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[start[0]],
            y=[start[1]],
            mode="markers",
            name="start",
            hoverinfo="skip",
            marker={"symbol": "star", "size": 16, "color": "#e4572e", "line": {"color": "white", "width": 1}},
        )
    )
    title = {"text": f"Click a dot to start there (density at sigma = {sigma:g})", "font": {"size": 13}}
    fig.update_layout(height=380, margin={**MARGIN, "t": 30}, showlegend=False, clickmode="event+select", title=title)
    _square(fig, lo, hi)
    return fig


def _at(path: ProbePath, sigma: float) -> np.ndarray:
    """The path's point at noise level sigma (interpolated in log sigma; its end at 0)."""
    if sigma <= 0:
        return path.points[-1]
    s = np.log(np.maximum(path.sigmas[:-1], 1e-12))[::-1]
    pts = path.points[:-1][::-1]
    t = np.log(sigma)
    return np.array([np.interp(t, s, pts[:, d]) for d in range(2)])


def probe_figure(mix: GaussianMixture, found: Probe, grid_size: int = 60) -> go.Figure:
    """One frame per step of the shared grid: the exact density at that step's noise level, each sampler's
    path so far with its current point, and the exact ODE path (dotted) with its point at the same level."""
    paths, exact = found.paths, found.exact
    lo, hi = probe_box(mix, [*paths, exact])
    sigmas = np.append(found.sigmas[:-1], 0.0)
    steps = len(sigmas)
    xs, ys, _ = grid(lo, hi, grid_size)
    layers = [log_density_grid(mix, float(s), lo, hi, grid_size)[2] for s in sigmas]
    ex = exact.points

    def traces(k: int) -> list[go.BaseTraceType]:
        z = layers[k]
        out: list[go.BaseTraceType] = [_heat(xs, ys, z, float(z.max()) + LOG_FLOOR, float(z.max()), "density", False)]
        here = _at(exact, float(sigmas[k]))
        line = {"color": "white", "dash": "dot", "width": 2}
        ring = {"color": "white", "size": 11, "symbol": "circle-open", "line": {"width": 2}}
        out.append(go.Scatter(x=ex[:, 0], y=ex[:, 1], mode="lines", name=exact.title, line=line, hoverinfo="skip"))
        out.append(
            go.Scatter(x=[here[0]], y=[here[1]], mode="markers", showlegend=False, hoverinfo="skip", marker=ring)
        )
        for i, p in enumerate(paths):
            color = MORE_COLORS[i % len(MORE_COLORS)]
            seen = p.points[: k + 1]
            out.append(
                go.Scatter(
                    x=seen[:, 0],
                    y=seen[:, 1],
                    mode="lines+markers",
                    name=f"{p.title} ({p.nfe} NFE)",
                    line={"color": color, "width": 2},
                    marker={"size": 4, "color": color},
                    hovertemplate="(%{x:.3f}, %{y:.3f})<extra>" + p.title + "</extra>",
                )
            )
        return out

    names = [str(k) for k in range(steps)]
    labels = [f"{s:.3g}" for s in sigmas]
    fig = go.Figure(traces(steps - 1), frames=[go.Frame(data=traces(k), name=names[k]) for k in range(steps)])
    fig.update_layout(
        height=560,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        **play_controls(names, labels, duration=350, prefix="sigma = ", active=steps - 1),
    )
    fig.update_layout(margin={**fig.layout.margin.to_plotly_json(), "t": 40})
    _square(fig, lo, hi)
    return fig


def probe_rows(found: Probe) -> list[dict[str, object]]:
    paths, end = found.paths, found.exact.points[-1]
    return [
        {
            "Sampler": p.title,
            "NFE": p.nfe,
            "End x": round(float(p.points[-1][0]), 4),
            "End y": round(float(p.points[-1][1]), 4),
            "Distance to the exact end": float(f"{float(np.linalg.norm(p.points[-1] - end)):.3g}"),
        }
        for p in paths
    ]


# ---- likelihood and memorisation ------------------------------------------------------------------------------------


def log_density_panels(panels: Sequence[Panel], xs: np.ndarray, ys: np.ndarray, height: int = 420):
    """Side-by-side heat maps of log densities on one colour scale (down to LOG_FLOOR below the top). A panel with
    estimated errors (the exact ODE) gives each cell's in its hover, and crosses the cells marked (an estimate over
    TRUSTED nats, or out of calls)."""
    top = max(float(np.nanmax(p.z)) for p in panels)
    fig = make_subplots(1, len(panels), subplot_titles=[p.title for p in panels], horizontal_spacing=0.06)
    for i, p in enumerate(panels):
        heat = _heat(xs, ys, p.z, top + LOG_FLOOR, top, p.title, i == len(panels) - 1)
        notes = None if p.error is None or p.capped is None else _error_notes(p.error, p.capped)
        if notes is not None:
            heat.update(text=notes, hovertemplate=_HOVER + "<br>%{text}" + f"<extra>{p.title}</extra>")
        fig.add_trace(heat, 1, i + 1)
        if notes is not None and (marked := p.marked) is not None and marked.any():
            rows, cols = np.nonzero(marked)
            fig.add_trace(
                go.Scatter(
                    x=xs[cols],
                    y=ys[rows],
                    mode="markers",
                    marker={"symbol": "x-thin", "size": 7, "line": {"width": 1.5, "color": "#d62728"}},
                    name=f"est. error > {TRUSTED:g} nats",
                    text=notes[rows, cols],
                    hovertemplate=_HOVER_POINT + "<br>%{text}<extra></extra>",
                    showlegend=False,
                ),
                1,
                i + 1,
            )
    fig.update_layout(height=height, margin={**MARGIN, "t": 40})
    _square(fig, [xs[0], ys[0]], [xs[-1], ys[-1]], len(panels))
    return fig


_HOVER = "x %{x:.2f}, y %{y:.2f}<br>log p %{z:.3f}"
_HOVER_POINT = "x %{x:.2f}, y %{y:.2f}"


def _error_notes(error: np.ndarray, capped: np.ndarray) -> np.ndarray:
    """Each cell's '± 3.1e-05 nats (est. error)', and where the ODE ran out of calls a note that it did."""
    notes = np.char.add(np.char.add("± ", np.char.mod("%.1e", error)), " nats (est. error)")
    return np.where(capped, np.char.add(notes, ", out of calls"), notes)


def nll_rows(nlls: Sequence[HeldOutNLL]) -> list[dict[str, object]]:
    """The held-out NLL table: nats with the standard error, bits per dimension, and the paired gap to the truth."""
    return [
        {
            "Density": n.what,
            "NLL (nats)": round(n.nll, 4),
            "± SE": round(n.se, 4),
            "bits / dim": round(n.bits_per_dim, 4),
            "NLL gap to the truth (paired)": ABSENT if n.gap is None else f"{n.gap:+.4f} ± {n.gap_se:.4f}",
        }
        for n in nlls
    ]


def nearness_figure(curves: dict[str, Nearness], height: int = 340) -> go.Figure:
    """Histograms of the distance from each sample to its nearest training point."""
    fig = go.Figure()
    top = max(float(np.quantile(n.nearest, 0.99)) for n in curves.values()) or 1.0
    for i, (name, n) in enumerate(curves.items()):
        fig.add_trace(
            go.Histogram(
                x=np.minimum(n.nearest, top),
                name=f"{name}: {n.copied:.0%} copies",
                xbins={"start": 0, "end": top, "size": top / 50},
                opacity=0.6,
                marker={"color": MORE_COLORS[i % len(MORE_COLORS)]},
                histnorm="probability",
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=height,
        margin={**MARGIN, "t": 20},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    fig.update_xaxes(title="distance to the nearest training point")
    fig.update_yaxes(title="share of samples")
    return fig


def study_figure(rows: Sequence[dict[str, float]], baseline: float, height: int = 360) -> go.Figure:
    """The share of samples that copy a training point against training steps, one line per training-set size."""
    fig = go.Figure()
    sizes = sorted({int(r["points"]) for r in rows})
    for i, n in enumerate(sizes):
        mine = [r for r in rows if int(r["points"]) == n]
        fig.add_trace(
            go.Scatter(
                x=[r["step"] for r in mine],
                y=[r["copied"] for r in mine],
                mode="lines+markers",
                name=f"{n:,} training points",
                line={"color": MORE_COLORS[i % len(MORE_COLORS)]},
            )
        )
    fig.add_hline(
        y=baseline,
        line={"dash": "dot", "color": "gray"},
        annotation_text="fresh draws from the mixture",
        annotation_position="top left",
    )
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="share of samples copying a training point", range=[0, 1.02], tickformat=".0%")
    fig.update_layout(height=height, margin={**MARGIN, "t": 20})
    return fig
