"""The app shell: the pages in one list (streamlit_app.py builds the navigation from it, the home page lists
it) and the sidebar every page shares (where the app runs, what the zoo has ready)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.device import describe_device
from ui.common.cache import registry
from ui.common.models import zoo_status


@dataclass(frozen=True, kw_only=True)
class PageInfo:
    path: str  # the page's file, relative to the repository root
    title: str
    icon: str
    section: str
    blurb: str
    default: bool = False


PAGES: tuple[PageInfo, ...] = (
    PageInfo(
        path="app_pages/home.py",
        title="Home",
        icon=":material/home:",
        section="Overview",
        blurb="What Diffusion Atlas is, the device it runs on, and the engine's samplers and schedules.",
        default=True,
    ),
    PageInfo(
        path="app_pages/forward.py",
        title="Forward process",
        icon=":material/blur_on:",
        section="Diffusion",
        blurb="Any image noised under any schedule; alpha_bar, SNR and sigma curves; schedules compared.",
    ),
    PageInfo(
        path="app_pages/samplers.py",
        title="Samplers",
        icon=":material/auto_awesome:",
        section="Diffusion",
        blurb="Every sampler on any zoo model, live; each sampler's maths and code; same-seed comparisons; export.",
    ),
    PageInfo(
        path="app_pages/ground_truth.py",
        title="Ground truth",
        icon=":material/verified:",
        section="Diffusion",
        blurb="Exact answers on a Gaussian mixture: sampler accuracy and orders, paths, likelihoods, memorisation.",
    ),
    PageInfo(
        path="app_pages/inversion.py",
        title="Inversion",
        icon=":material/swap_vert:",
        section="Diffusion",
        blurb="Data run up the ODE to its noise and back: round-trip error, the noise, interpolation, class swap.",
    ),
    PageInfo(
        path="app_pages/guidance.py",
        title="Guidance",
        icon=":material/tune:",
        section="Diffusion",
        blurb="What the guidance scale trades: accuracy, diversity, FD-LeNet per scale; an interval; fields.",
    ),
    PageInfo(
        path="app_pages/toy.py",
        title="Toy 2-D/3-D lab",
        icon=":material/scatter_plot:",
        section="Playgrounds",
        blurb="Pick or draw a point cloud, train a small model in seconds, watch points flow from noise to data.",
    ),
    PageInfo(
        path="app_pages/latent.py",
        title="Latent MNIST",
        icon=":material/grain:",
        section="Playgrounds",
        blurb="A VAE with a 2-D latent: its plane as it trains, per-class densities, and guided diffusion in it.",
    ),
    PageInfo(
        path="app_pages/training_logs.py",
        title="Training logs",
        icon=":material/monitoring:",
        section="Models",
        blurb="Loss curves, sample grids and settings of every run (bundled, runs folder, this session), compared.",
    ),
    PageInfo(
        path="app_pages/compare_checkpoints.py",
        title="Compare checkpoints",
        icon=":material/compare:",
        section="Models",
        blurb="Two to four checkpoints from the same noise, side by side: speed, size, (MNIST) FD-LeNet and accuracy.",
    ),
)


def sections() -> dict[str, list[PageInfo]]:
    """Pages grouped by section, in the order they are listed."""
    grouped: dict[str, list[PageInfo]] = {}
    for page in PAGES:
        grouped.setdefault(page.section, []).append(page)
    return grouped


def render_sidebar() -> None:
    info = describe_device()
    with st.sidebar:
        st.caption(f"Device: **{info.kind}** ({info.name}) · torch {info.torch_version}")
        st.caption(zoo_status(registry()))
