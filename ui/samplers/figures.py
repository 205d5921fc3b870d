"""Figures and pictures for the Samplers page: pure builders (no Streamlit calls)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from core.data.images import enlarge, gif_bytes, tile, to_uint8
from core.diffusion.trajectory import Frame, TrajectoryRecorder
from core.labs import provenance
from ui.common.charts import LOG_AXIS, MARGIN

EPS_RANGE = (-3.0, 3.0)


def frame_grids(frame: Frame, min_side: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grids of x_t (in the model's VP scale), predicted x_0 and predicted noise, enlarged for display."""

    def grid(x: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
        return enlarge(tile(to_uint8(x, value_range)), min_side)

    return grid(frame.x_vp), grid(frame.denoised), grid(frame.eps, EPS_RANGE)


def noise_chart(recorder: TrajectoryRecorder, final: torch.Tensor) -> go.Figure:
    """Left, the planned noise level of each step; right, two measured noise levels as shares of it: the
    noise the model sees in x (std(x - x0_hat) / sigma) and the noise actually left (RMS(x - final) / sigma).
    Both near 1: the model takes out the noise the schedule plans. The second falls below 1 where the sample
    has already settled, and rises above it where a stochastic sampler adds noise that it later removes."""
    steps = np.arange(len(recorder.sigmas))
    sigmas = np.asarray(recorder.sigmas)
    left = recorder.remaining_noise(final)
    fig = make_subplots(1, 2, subplot_titles=("planned σ per step", "measured noise ÷ planned σ"))
    fig.add_trace(
        go.Scatter(x=steps, y=sigmas, name="σ planned", mode="lines+markers", line={"color": "#5b3fd1"}), 1, 1
    )
    seen = np.asarray(recorder.seen_noise) / sigmas
    fig.add_trace(
        go.Scatter(x=steps, y=seen, name="std(x − x̂₀) ÷ σ: the noise the model sees", line={"color": "#e4572e"}), 1, 2
    )
    fig.add_trace(
        go.Scatter(
            x=[i for i, _ in left],
            y=[v / sigmas[i] for i, v in left],
            mode="markers",
            name="RMS(x − final) ÷ σ: the noise actually left",
            marker={"color": "#17a398", "size": 8},
        ),
        1,
        2,
    )
    fig.add_hline(y=1, line={"dash": "dot", "color": "#999"}, row=1, col=2)
    fig.update_layout(height=320, margin={**MARGIN, "t": 40}, legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title="step")
    fig.update_yaxes(**LOG_AXIS, title="σ (VE units)", row=1, col=1)
    fig.update_yaxes(title="share of σ", rangemode="tozero", row=1, col=2)
    return fig


def run_panels(frame: Frame) -> np.ndarray:
    """x_t, predicted x_0 and predicted noise of one recorded step, side by side in one image."""
    grids = frame_grids(frame)
    gap = np.full((grids[0].shape[0], 12, *grids[0].shape[2:]), 255, dtype=np.uint8)
    return np.concatenate([grids[0], gap, grids[1], gap, grids[2]], axis=1)


def run_gif(recorder: TrajectoryRecorder, record: dict | None = None) -> bytes:
    """Every recorded step's three panels (x_t, x_0, noise) as an animated GIF, from noise to the end; with the
    run's `record` (core/labs/provenance.py) in its comment."""
    frames = [run_panels(f) for f in recorder.frames]
    return gif_bytes(frames, duration_ms=250) if record is None else provenance.gif(frames, record, duration_ms=250)
