"""Architectures the zoo can build from a config, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from zoo.errors import CheckpointError, ZooError


def _unet2d(config: Mapping[str, Any]) -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel.from_config(dict(config))


def _conv_vae(config: Mapping[str, Any]) -> torch.nn.Module:
    from core.models.vae import ConvVAE

    return ConvVAE(**config)


def _mlp_vae(config: Mapping[str, Any]) -> torch.nn.Module:
    from core.models.vae import MLPVAE

    return MLPVAE(**config)


def _lenet(config: Mapping[str, Any]) -> torch.nn.Module:
    from core.models.classifier import LeNet

    return LeNet(**config)


def _mlp_denoiser(config: Mapping[str, Any]) -> torch.nn.Module:
    from core.models.mlp import MLPConfig, MLPDenoiser

    return MLPDenoiser(MLPConfig(**config))


ARCHITECTURES: dict[str, Callable[[Mapping[str, Any]], torch.nn.Module]] = {
    "unet2d": _unet2d,
    "conv-vae": _conv_vae,
    "mlp-vae": _mlp_vae,
    "lenet": _lenet,
    "mlp-denoiser": _mlp_denoiser,
}


def build(architecture: str, config: Mapping[str, Any], what: str) -> torch.nn.Module:
    """An untrained module of the named architecture; a config it cannot take is a CheckpointError."""
    factory = ARCHITECTURES.get(architecture)
    if factory is None:
        raise ZooError(f"{what}: unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}.")
    try:
        return factory(config)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{what}: its config does not describe a valid {architecture} ({e}).") from e


def fix_legacy_keys(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Rename attention weights saved by early diffusers releases (query/key/value/proj_attn) in place."""
    fixer = getattr(module, "_fix_state_dict_keys_on_load", None)
    if fixer is not None:
        fixer(state)
