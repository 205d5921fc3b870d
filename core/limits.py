"""The limits a server's operator can set through the environment, read at call time, each with a default that
suits a shared 2-core server (Streamlit Community Cloud: one process for every visitor, 1-3 GB of memory).
These are the caps that bound a visitor's cost in time or memory; the others (slider ranges, points drawn per
figure, ...) are named where they live.

ATLAS_MAX_JOB_SECONDS      one job started on a page: refused by its estimate, stopped there as it runs 300
ATLAS_MAX_DOWNLOAD_MB      one file downloaded from the Hub, by the size the Hub states before sending 1024
ATLAS_MAX_PARAMETERS       one network built from a config, counted before any weight is allocated   300e6
ATLAS_MAX_IMAGE_SIDE       the image side of a model someone names (a Hub id, a local folder)          512
ATLAS_MAX_GFLOPS_PER_IMAGE one evaluation of one image by a model, counted on the meta device at load  1000
ATLAS_MAX_UPLOAD_MB        one uploaded image                                                            10
ATLAS_MAX_CSV_MB           one uploaded CSV of points                                                    20
ATLAS_MAX_POINTS           points in a toy data set, and points sampled from a toy model at once     100000
ATLAS_MAX_COMPARE_WORK     image evaluations (model calls x images) in one sampling comparison        20000
ATLAS_MAX_QUALITY_WORK     image evaluations in one quality measure (n samples of each checkpoint)    60000
ATLAS_MAX_LOG_SCALARS      scalar points read from one TensorBoard run (more are thinned)            200000
ATLAS_MAX_LOG_IMAGES       images read from one TensorBoard run (more are spread over the run)          200
ATLAS_MAX_LOG_MB           read of one TensorBoard event file (its first MB; the rest is left unread)    128
ATLAS_MAX_SESSION_RUNS     page trainings a session keeps the logs of (Training logs)                    40
ATLAS_SESSION_CHECKPOINTS  of those, the newest that keep their checkpoints in memory                     3
ATLAS_MEMORY_MB            the memory the server keeps under (new jobs refused near it); 0: its cgroup's    0
                           limit, else the machine's (core/memory.py)
ATLAS_CACHE_MINUTES        a large value every session shares (a loaded model, a decoded data set, encoded
                           digits) is dropped this long after it was made, then made again on demand     60
ATLAS_WARMUP               1: the slow first imports (torch's compiler, scipy, diffusers: ~150 MB) are done
                           in the background when the server starts; 0: each where first used (unset: 1,
                           but 0 under a memory limit below 2 GB: ui/common/warmup.py)                    1

A value that is not a number falls back to the default; each is at least its floor. ATLAS_CACHE_MINUTES is read
once, when the app's caches are defined (the server's start); the others at call time.
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


def max_flops_per_image() -> float:
    """Floating-point operations one evaluation of one image may cost (the limit is read in GFLOP)."""
    return env_number("ATLAS_MAX_GFLOPS_PER_IMAGE", 1000.0, 0.001) * 1e9


def max_upload_bytes() -> int:
    return int(env_number("ATLAS_MAX_UPLOAD_MB", 10.0, 0.001) * 2**20)


def max_csv_bytes() -> int:
    return int(env_number("ATLAS_MAX_CSV_MB", 20.0, 0.001) * 2**20)


def max_points() -> int:
    return int(env_number("ATLAS_MAX_POINTS", 100_000, 100))


def max_compare_work() -> int:
    return int(env_number("ATLAS_MAX_COMPARE_WORK", 20_000, 1))


def max_quality_work() -> int:
    return int(env_number("ATLAS_MAX_QUALITY_WORK", 60_000, 1))


def max_log_scalars() -> int:
    return int(env_number("ATLAS_MAX_LOG_SCALARS", 200_000, 1))


def max_log_images() -> int:
    return int(env_number("ATLAS_MAX_LOG_IMAGES", 200, 1))


def max_log_bytes() -> int:
    return int(env_number("ATLAS_MAX_LOG_MB", 128.0, 0.001) * 2**20)


def max_session_runs() -> int:
    return int(env_number("ATLAS_MAX_SESSION_RUNS", 40, 1))


def session_checkpoints() -> int:
    return int(env_number("ATLAS_SESSION_CHECKPOINTS", 3, 0))


def memory_limit_mb() -> float:
    """The memory the server keeps its jobs under, in MB; 0 means its container's limit (core/memory.py)."""
    return env_number("ATLAS_MEMORY_MB", 0.0, 0.0)


def cache_seconds() -> float:
    """The time to live of the shared caches that hold large values (ui/common/cache.CACHE_TTL)."""
    return env_number("ATLAS_CACHE_MINUTES", 60.0, 1.0) * 60


def warmup_imports() -> int:
    """0: no warm-up imports at the server's start (ui/common/warmup.py); 1 or more: warm up."""
    return int(env_number("ATLAS_WARMUP", 1, 0))
