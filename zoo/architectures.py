"""Architectures the zoo can build from a config, by name."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from core.cost import count_flops
from core.limits import max_flops_per_image, max_image_side, max_parameters
from core.text import plain_label
from zoo.errors import CheckpointError, TooLargeError, ZooError

MAX_TRAIN_STEPS = 100_000  # the training steps (T) a config may declare: the Steps boxes go up to T

# A UNet config's numbers: (smallest, largest, whether null is allowed); in a list, each number. A UNet's build
# cost follows its structure, not only its parameter count (2,000 thin layers a block are few parameters and a
# minute to build, even on the meta device), and a negative width fails inside torch: checked before building.
UNET_NUMBERS = {
    "sample_size": (1, 2048, True),
    "in_channels": (1, 64, False),
    "out_channels": (1, 64, False),
    "block_out_channels": (1, 65_536, False),
    "layers_per_block": (1, 16, False),
    "norm_num_groups": (1, 65_536, False),
    "attn_norm_num_groups": (1, 65_536, True),
    "attention_head_dim": (1, 65_536, True),
    "time_embedding_dim": (1, 262_144, True),
    "num_class_embeds": (0, 100_000, True),
    "num_train_timesteps": (1, MAX_TRAIN_STEPS, True),
    "downsample_padding": (0, 16, False),
}
MAX_UNET_BLOCKS = 8


def check_unet_config(config: Mapping[str, Any]) -> None:
    """A UNet2DModel config's numbers, checked before anything is built: whole numbers in range (a
    CheckpointError), at most this server's structure (a TooLargeError)."""
    for key, (low, high, nullable) in UNET_NUMBERS.items():
        if key not in config or (config[key] is None and nullable):
            continue
        value = config[key]
        numbers = (
            value if isinstance(value, (list, tuple)) and key in ("block_out_channels", "sample_size") else [value]
        )
        shown = plain_label(str(value), 40)
        if not numbers or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in numbers):
            raise CheckpointError(f"its config's {key} must be whole numbers from {low} to {high:,} (got {shown}).")
        if any(v > high for v in numbers):
            raise TooLargeError(f"Its config asks for {key} = {shown}; this server builds UNets up to {high:,}.")
    for key in ("down_block_types", "up_block_types", "block_out_channels"):
        if len(config.get(key) or ()) > MAX_UNET_BLOCKS:
            raise TooLargeError(f"Its config asks for {len(config[key])} blocks; this server builds UNets up to 8.")


def _unet2d(config: Mapping[str, Any]) -> torch.nn.Module:
    from diffusers import UNet2DModel

    check_unet_config(config)
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
    except (TooLargeError, CheckpointError) as e:
        raise type(e)(f"{what}: {e}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError, AssertionError) as e:
        # a config from outside (a Hub repo) can hold anything: empty block lists, zero groups, wrong types
        reason = plain_label(f"{e.__class__.__name__}: {e}", 100)
        raise CheckpointError(f"{what}: its config does not describe a valid {architecture} ({reason}).") from None


def state_size(architecture: str, config: Mapping[str, Any], what: str) -> int:
    """Numbers in the state dict of the network `config` describes, counted on the meta device (nothing is
    allocated: a config that describes billions of parameters costs milliseconds). A config that cannot be
    built there is refused (it would skip this count, the server's bound on what it builds)."""
    try:
        with torch.device("meta"):
            module = build(architecture, config, what)
    except (RuntimeError, NotImplementedError) as e:
        reason = plain_label(f"{e.__class__.__name__}: {e}", 100)
        raise CheckpointError(
            f"{what}: its config does not describe a network this server can size ({reason})."
        ) from None
    return sum(t.numel() for t in module.state_dict().values())


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def unet_outline(config: Mapping[str, Any], what: str) -> tuple[tuple[int, int, int], int]:
    """The image shape (channels, side, side) and the number of class embeddings (0: unconditional) of a
    UNet2DModel config a person named (a Hub repo, a local folder), checked before any weight is fetched,
    built or timed: a UNet2DModel, whole numbers, square images of 1-16 channels and sides 4 to
    ATLAS_MAX_IMAGE_SIDE (else the server could be asked to sample 2048-pixel images)."""
    if config.get("_class_name") not in (None, "UNet2DModel"):
        raise CheckpointError(f"{what} holds a {plain_label(str(config.get('_class_name')), 40)}, not a UNet2DModel.")
    channels, size = config.get("in_channels", 3), config.get("sample_size", 32)
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    side = max_image_side()
    if not (_whole(channels, 1, 16) and _whole(size, 4, side)):
        raise CheckpointError(
            f"{what}: its config asks for images of {plain_label(str(channels), 20)} channels and side "
            f"{plain_label(str(size), 20)}; this server samples square images of 1-16 channels and sides 4-{side} "
            "(ATLAS_MAX_IMAGE_SIDE)."
        )
    classes = config.get("num_class_embeds") or 0
    if not _whole(classes, 0, 100_000):
        raise CheckpointError(f"{what}: num_class_embeds must be a whole number (got {plain_label(str(classes), 20)}).")
    try:
        check_unet_config(config)
    except (TooLargeError, CheckpointError) as e:
        raise type(e)(f"{what}: {e}") from None
    check_flops(forward_flops("unet2d", config, (channels, size, size), what), what)
    return (channels, size, size), classes


def forward_flops(architecture: str, config: Mapping[str, Any], sample_shape: Sequence[int], what: str) -> int:
    """FLOPs of one evaluation of one image by the denoising network `config` describes (core/cost.count_flops),
    called as its denoiser calls it, network(x, t[, class_labels]), on the meta device: nothing is computed or
    allocated, so a forward that would take minutes is counted in a fraction of a second (and once per config).
    A network that cannot be counted there is refused: its cost would be unknown."""
    try:
        return _counted(architecture, json.dumps(dict(config), sort_keys=True), tuple(sample_shape))
    except (TooLargeError, CheckpointError) as e:
        raise type(e)(f"{what}: {e}") from None
    except (
        RuntimeError,
        NotImplementedError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
        ArithmeticError,
        AssertionError,
    ) as e:
        reason = plain_label(f"{e.__class__.__name__}: {e}", 100)
        raise CheckpointError(f"{what}: its network's cost could not be counted on this server ({reason}).") from None


@functools.lru_cache(maxsize=64)
def _counted(architecture: str, config: str, sample_shape: tuple[int, ...]) -> int:
    settings = json.loads(config)
    with torch.device("meta"):
        network = ARCHITECTURES[architecture](settings).eval()
        x, t = torch.zeros(1, *sample_shape), torch.zeros(1)
        conditional = architecture == "unet2d" and settings.get("num_class_embeds")  # then labels are required
        extra = {"class_labels": torch.zeros(1, dtype=torch.long)} if conditional else {}
        with torch.no_grad():
            return count_flops(lambda: network(x, t, **extra))


def check_flops(flops: int, what: str) -> None:
    """TooLargeError when one evaluation of one image costs more than the server allows
    (ATLAS_MAX_GFLOPS_PER_IMAGE, core/limits.py)."""
    if flops > (limit := max_flops_per_image()):
        raise TooLargeError(
            f"{what}: one evaluation of one image by this network costs {_gflop(flops)} GFLOP, over this server's "
            f"{_gflop(limit)} GFLOP per image (ATLAS_MAX_GFLOPS_PER_IMAGE). A network's cost grows with its image "
            "side, attention over every pixel with its fourth power, whatever its parameter count."
        )


def _gflop(flops: float) -> str:
    return f"{flops / 1e9:,.0f}" if flops >= 1e10 else f"{flops / 1e9:.2g}"


def check_size(numbers: int, what: str) -> None:
    """TooLargeError when a network is larger than the server builds (ATLAS_MAX_PARAMETERS, core/limits.py)."""
    if numbers > max_parameters():
        raise TooLargeError(
            f"{what}: its config describes a network of {numbers / 1e6:,.1f} million parameters; this server builds "
            f"at most {max_parameters() / 1e6:,.0f} million (ATLAS_MAX_PARAMETERS)."
        )


def fix_legacy_keys(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Rename attention weights saved by early diffusers releases (query/key/value/proj_attn) in place."""
    fixer = getattr(module, "_fix_state_dict_keys_on_load", None)
    if fixer is not None:
        fixer(state)
