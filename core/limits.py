"""The limits a server's operator can set through the environment, read at call time, each with a default that
suits a shared 2-core server (Streamlit Community Cloud: one process for every visitor, 1-3 GB of memory).

ATLAS_MAX_JOB_SECONDS   one training started on a page, by its estimate (core/training/budget.py)   300
ATLAS_MAX_DOWNLOAD_MB   one file downloaded from the Hub, by the size the Hub states before sending  1024
ATLAS_MAX_PARAMETERS    one network built from a config, counted before any weight is allocated   300e6
ATLAS_MAX_IMAGE_SIDE    the image side of a model someone names (a Hub id, a local folder)          512

A value that is not a number falls back to the default; each is at least its floor.
"""

from __future__ import annotations

import math
import os


def env_number(name: str, default: float, floor: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return max(floor, value) if math.isfinite(value) else default  # NaN or infinity -> the default


def max_job_seconds() -> float:
    return env_number("ATLAS_MAX_JOB_SECONDS", 300.0, 1.0)


def max_download_bytes() -> int:
    return int(env_number("ATLAS_MAX_DOWNLOAD_MB", 1024.0, 0.001) * 2**20)


def max_parameters() -> int:
    return int(env_number("ATLAS_MAX_PARAMETERS", 300e6, 1.0))


def max_image_side() -> int:
    return int(env_number("ATLAS_MAX_IMAGE_SIDE", 512.0, 8.0))
