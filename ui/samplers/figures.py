"""Figures and pictures for the Samplers page: pure builders (no Streamlit calls)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from core.data.images import enlarge, gif_bytes, tile, to_uint8
from core.diffusion.trajectory import Frame, TrajectoryRecorder

EPS_RANGE = (-3.0, 3.0)


def frame_grids(frame: Frame, min_side: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grids of x_t (in the model's VP scale), predicted x_0 and predicted noise, enlarged for display."""

    def grid(x: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
        return enlarge(tile(to_uint8(x, value_range)), min_side)

    return grid(frame.x_vp), grid(frame.denoised), grid(frame.eps, EPS_RANGE)


def noise_chart(recorder: TrajectoryRecorder, final: torch.Tensor) -> go.Figure:
    """Planned sigma per step, the noise the model sees in x, and the noise actually left (distance to the end)."""
    steps = np.arange(len(recorder.sigmas))
    left = recorder.remaining_noise(final)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=steps, y=recorder.sigmas, name="σ planned", mode="lines+markers", line={"color": "#5b3fd1"})
    )
    fig.add_trace(
        go.Scatter(x=steps, y=recorder.seen_noise, name="std(x − x̂₀): noise the model sees", line={"color": "#e4572e"})
    )
    fig.add_trace(
        go.Scatter(
            x=[i for i, _ in left],
            y=[max(v, 1e-4) for _, v in left],
            name="RMS(x − final): noise actually left",
            mode="markers",
            marker={"color": "#17a398", "size": 8},
        )
    )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "step"},
        yaxis={"title": "noise level (VE units)", "type": "log", "exponentformat": "power"},
        legend={"orientation": "h", "y": -0.3},
        title={"text": "Noise along the reverse process", "font": {"size": 13}},
    )
    return fig


def trajectory_gif(recorder: TrajectoryRecorder, final: torch.Tensor) -> bytes:
    """x_t grids from noise to the finished samples, as an animated GIF."""
    k = min(recorder.keep, len(final))
    frames = [enlarge(tile(to_uint8(f.x_vp)), 256) for f in recorder.frames]
    frames.append(enlarge(tile(to_uint8(final[:k])), 256))
    return gif_bytes(frames)
