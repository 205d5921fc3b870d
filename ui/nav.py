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
        "pages/home.py",
        "Home",
        ":material/home:",
        "Overview",
        "What Diffusion Atlas is, the device it runs on, and the engine's samplers and schedules.",
        default=True,
    ),
    PageInfo(
        "pages/forward.py",
        "Forward process",
        ":material/blur_on:",
        "Diffusion",
        "Any image noised under any schedule; alpha_bar, SNR and sigma curves; schedules compared.",
    ),
)


def sections() -> dict[str, list[PageInfo]]:
    """Pages grouped by section, in the order they are listed."""
    grouped: dict[str, list[PageInfo]] = {}
    for page in PAGES:
        grouped.setdefault(page.section, []).append(page)
    return grouped
