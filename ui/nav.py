"""The app's pages in one list: streamlit_app.py builds the navigation from it, the home page lists it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str  # the page's file, relative to the repository root
    title: str
    icon: str
    section: str
    blurb: str
    default: bool = False


PAGES: tuple[PageInfo, ...] = (
    PageInfo(
        "app_pages/home.py",
        "Home",
        ":material/home:",
        "Overview",
        "What Diffusion Atlas is, the device it runs on, and the engine's samplers and schedules.",
        default=True,
    ),
    PageInfo(
        "app_pages/forward.py",
        "Forward process",
        ":material/blur_on:",
        "Diffusion",
        "Any image noised under any schedule; alpha_bar, SNR and sigma curves; schedules compared.",
    ),
    PageInfo(
        "app_pages/samplers.py",
        "Samplers",
        ":material/auto_awesome:",
        "Diffusion",
        "Every sampler on any zoo model, live; each sampler's maths and code; same-seed comparisons; export.",
    ),
    PageInfo(
        "app_pages/toy.py",
        "Toy 2-D/3-D lab",
        ":material/scatter_plot:",
        "Playgrounds",
        "Pick or draw a point cloud, train a small model in seconds, watch points flow from noise to data.",
    ),
    PageInfo(
        "app_pages/latent.py",
        "Latent MNIST",
        ":material/grain:",
        "Playgrounds",
        "A VAE with a 2-D latent: its plane as it trains, per-class densities, and guided diffusion in it.",
    ),
    PageInfo(
        "app_pages/training_logs.py",
        "Training logs",
        ":material/monitoring:",
        "Models",
        "Loss curves, sample grids and settings of every run (bundled, runs folder, this session), compared.",
    ),
    PageInfo(
        "app_pages/compare_checkpoints.py",
        "Compare checkpoints",
        ":material/compare:",
        "Models",
        "Two to four checkpoints from the same noise, side by side: speed, size and (MNIST) FD-LeNet and accuracy.",
    ),
)


def sections() -> dict[str, list[PageInfo]]:
    """Pages grouped by section, in the order they are listed."""
    grouped: dict[str, list[PageInfo]] = {}
    for page in PAGES:
        grouped.setdefault(page.section, []).append(page)
    return grouped
