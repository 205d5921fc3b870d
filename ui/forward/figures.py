"""Figures for the forward-process page: pure builders from data to Plotly figures (no Streamlit calls)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.diffusion.schedules import NoiseSchedule
from ui.common.charts import LOG_AXIS

COLOURS = ("#5b3fd1", "#e4572e", "#17a398")
GRID_COLOURS = (*COLOURS, "#f2a541", "#3a86ff")


def schedule_curves(schedules: Sequence[tuple[str, NoiseSchedule]], t_marker: int | None = None) -> go.Figure:
    """Against t, one colour per schedule: beta_t, the path's signal scale a_t (solid) and noise scale b_t
    (dashed) with x_t = a_t x_0 + b_t eps (VP: sqrt(ab), sqrt(1 - ab); the flow path: 1 - t, t), the SNR
    a^2 / b^2 (log) and sigma = b / a (log), which every path shares. Flow matching has no beta_t: its panel
    says so."""
    fig = make_subplots(
        rows=1,
        cols=4,
        subplot_titles=(
            "β<sub>t</sub> (VP)",
            "a<sub>t</sub> (signal, —), b<sub>t</sub> (noise, - -)",
            "SNR = a²/b²",
            "σ = b/a",
        ),
        horizontal_spacing=0.06,
    )
    for k, (label, sched) in enumerate(schedules):
        t = np.arange(sched.num_steps)
        colour = COLOURS[k % len(COLOURS)]
        a, b = sched.signal_and_noise(sched.sigmas)
        curves = [
            (1, sched.betas, "solid"),
            (2, a, "solid"),
            (2, b, "dash"),
            (3, sched.snr, "solid"),
            (4, sched.sigmas, "solid"),
        ]
        if sched.path == "flow":
            curves = curves[1:]  # its betas would be those of a VP path with the same sigmas: not its own
        for col, values, dash in curves:
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=values.numpy(),
                    name=label,
                    legendgroup=label,
                    showlegend=col == 2 and dash == "solid",
                    line={"color": colour, "width": 2, "dash": dash},
                    hovertemplate="t=%{x}<br>%{y:.4g}<extra>" + label + "</extra>",
                ),
                row=1,
                col=col,
            )
    if max((float(s.betas.max()) for _, s in schedules if s.path != "flow"), default=0) > 0.1:  # cosine: 0.999
        fig.update_yaxes(**LOG_AXIS, row=1, col=1)  # would flatten every other beta curve to zero
    fig.update_yaxes(**LOG_AXIS, row=1, col=3)
    fig.update_yaxes(**LOG_AXIS, row=1, col=4)
    fig.update_xaxes(title_text="t")
    flow_only = all(s.path == "flow" for _, s in schedules)
    if t_marker is not None:
        for col in range(1 + flow_only, 5):
            fig.add_vline(x=t_marker, line={"color": "#888", "dash": "dot", "width": 1}, row=1, col=col)
    if any(s.path == "flow" for _, s in schedules):
        _no_beta_note(fig, alone=flow_only)
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def _no_beta_note(fig: go.Figure, alone: bool) -> None:
    """Say in the beta_t panel why flow matching draws nothing there: in place of empty axes when it is alone,
    in a corner above the other schedules' curves otherwise."""
    left, right = fig.layout.xaxis.domain
    if not alone:
        text, where = (
            "Flow matching: no β<sub>t</sub>",
            {"x": left + 0.01, "y": 0.98, "xanchor": "left", "yanchor": "top"},
        )
    else:
        text = (
            "Flow matching has no β<sub>t</sub>:<br>x<sub>t</sub> = (1 − t) x<sub>0</sub> + t ε<br>is one straight "
            "line, not<br>a chain of noising steps.<br>Its a<sub>t</sub> and b<sub>t</sub> are<br>on the right."
        )
        where = {"x": (left + right) / 2, "y": 0.5, "xanchor": "center", "yanchor": "middle"}
        blank = {"showticklabels": False, "showgrid": False, "zeroline": False, "title_text": None}
        fig.update_xaxes(**blank, row=1, col=1)
        fig.update_yaxes(**blank, row=1, col=1)
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        showarrow=False,
        align="left",
        font={"size": 12, "color": "#444"},
        bgcolor="rgba(255, 255, 255, 0.85)",
        **where,
    )


def sampling_grids_figure(
    schedule: NoiseSchedule, steps: int, rho: float, custom: torch.Tensor | None = None
) -> go.Figure:
    """The n noise levels (the final 0 left out on the log axes) that each grid of the schedule visits: sigma
    against the step, log-SNR = -2 log sigma, and the grids' points on the schedule's own sigma(t) curve. A
    typed grid (`custom`, n sigmas then 0) is drawn beside them in black."""
    fig = make_subplots(
        1,
        3,
        subplot_titles=("σ at each sampling step", "log-SNR at each sampling step", "the points on σ(t)"),
        horizontal_spacing=0.06,
    )
    grids = {f"{s} timesteps": schedule.sampling_sigmas(steps, s) for s in ("leading", "trailing")}
    grids["uniform in t"] = schedule.sampling_sigmas(steps, "uniform-time")
    grids["uniform in log-SNR"] = schedule.sampling_sigmas(steps, "log-snr")
    grids[f"Karras ρ = {rho:g}"] = schedule.sampling_sigmas(steps, "karras", rho=rho)
    if custom is not None:
        grids["typed"] = custom
    t = np.arange(schedule.num_steps)
    fig.add_trace(
        go.Scatter(x=t, y=schedule.sigmas.numpy(), name="σ(t)", line={"color": "#bbb", "width": 3}, showlegend=False),
        1,
        3,
    )
    for k, (label, sigmas) in enumerate(grids.items()):
        sig = sigmas[:-1].numpy()
        sig = sig[sig > 0]
        colour = "#111" if label == "typed" else GRID_COLOURS[k % len(GRID_COLOURS)]
        style = {"color": colour, "width": 2}
        steps_axis = np.arange(len(sig))
        fig.add_trace(go.Scatter(x=steps_axis, y=sig, name=label, line=style, mode="lines+markers"), 1, 1)
        fig.add_trace(
            go.Scatter(x=steps_axis, y=-2 * np.log(sig), line=style, mode="lines+markers", showlegend=False), 1, 2
        )
        on_curve = schedule.sigma_to_t(torch.from_numpy(sig)).numpy()
        fig.add_trace(
            go.Scatter(
                x=on_curve,
                y=sig,
                mode="markers",
                marker={"color": colour, "size": 7, "symbol": "circle-open" if label != "typed" else "x"},
                showlegend=False,
                hovertemplate=f"{label}<br>t %{{x:.1f}}<br>σ %{{y:.4g}}<extra></extra>",
            ),
            1,
            3,
        )
    fig.update_yaxes(**LOG_AXIS, title_text="σ", row=1, col=1)
    fig.update_yaxes(title_text="log-SNR", row=1, col=2)
    fig.update_yaxes(**LOG_AXIS, row=1, col=3)
    fig.update_xaxes(title_text="sampling step", row=1, col=1)
    fig.update_xaxes(title_text="sampling step", row=1, col=2)
    fig.update_xaxes(title_text="t", row=1, col=3)
    fig.update_layout(height=330, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.3})
    return fig


def pixel_histogram(x_t: torch.Tensor, t: int, signal: float) -> go.Figure:
    """Histogram of x_t's pixel values against the N(0, 1) density that x_T approaches."""
    values = x_t.flatten().numpy()
    grid = np.linspace(-4, 4, 200)
    fig = go.Figure()
    fig.add_trace(
        go.Histogram(x=values, histnorm="probability density", nbinsx=60, name=f"x_t at t={t}", marker_color=COLOURS[0])
    )
    fig.add_trace(
        go.Scatter(x=grid, y=np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi), name="N(0, 1)", line={"color": COLOURS[1]})
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": f"pixel values at t={t} (signal scale {signal:.3f})", "font": {"size": 13}},
        xaxis={"range": [-4, 4], "title": "value"},
        yaxis={"title": "density"},
        legend={"orientation": "h", "y": -0.3},
        bargap=0.02,
    )
    return fig


def timestep_embedding_heatmap(num_steps: int, dim: int = 64) -> go.Figure:
    """The sinusoidal embedding a diffusers UNet2DModel computes for each t (its real function)."""
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.arange(num_steps)
    emb = get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0).numpy()
    fig = go.Figure(
        go.Heatmap(
            z=emb.T,
            x=t.numpy(),
            colorscale="RdBu",
            zmid=0,
            colorbar={"title": "value"},
            hovertemplate="t=%{x}<br>channel %{y}<br>%{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=280,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "timestep t"},
        yaxis={"title": "embedding channel (cos | sin)"},
    )
    return fig
