"""VAEs with a 2-D latent for 28x28 digits (Kingma & Welling 2014): a convolutional one (the bundled
mnist-vae-2d) and an MLP one (trained on the Latent MNIST page: about seven times faster a step on a CPU,
where the convolutions with one input or output channel are slow, for the same latent quality).

The encoder maps a digit to the mean and log-variance of a diagonal Gaussian q(z | x) in R^2; the decoder
maps z to one logit per pixel (a Bernoulli likelihood for intensities in [0, 1]). The latent is 2-D so that
the whole latent space can be drawn, at the price of blurrier reconstructions than a larger one would give.
"""

from __future__ import annotations

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn import functional as F


class VAE(nn.Module):
    """What every VAE here shares: `encoder` (x -> mean and log-variance, [B, 2 latent_dim]) and `decoder`
    (z -> pixel logits [B, 1, 28, 28]) are set by the subclass."""

    latent_dim: int
    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [0, 1], [B, 1, 28, 28] -> (mean, log-variance), each [B, latent_dim]."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-12, 8)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, latent_dim] -> pixel intensities in [0, 1], [B, 1, 28, 28]."""
        return torch.sigmoid(self.decoder(z))

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised sample z = mean + exp(logvar / 2) * eps; returns (logits, mean, logvar)."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator).to(mean.device)
        z = mean + torch.exp(0.5 * logvar) * eps
        return self.decode_logits(z), mean, logvar


class ConvVAE(VAE, PyTorchModelHubMixin):
    """28 -> 14 -> 7 with strided convolutions, then linear layers; the decoder mirrors it."""

    def __init__(self, latent_dim: int = 2, channels: int = 32, hidden: int = 256) -> None:
        super().__init__()
        c = channels
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.SiLU(),  # 14x14
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.SiLU(),  # 7x7
            nn.Flatten(),
            nn.Linear(2 * c * 49, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * c * 49), nn.SiLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.SiLU(),  # 14x14
            nn.ConvTranspose2d(c, 1, 4, 2, 1),  # 28x28 logits
        )  # fmt: skip


class MLPVAE(VAE, PyTorchModelHubMixin):
    """784 -> hidden (x depth) -> 2 latent_dim, and back: dense layers only."""

    def __init__(self, latent_dim: int = 2, hidden: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        encoder: list[nn.Module] = [nn.Flatten(), nn.Linear(28 * 28, hidden), nn.SiLU()]
        decoder: list[nn.Module] = [nn.Linear(latent_dim, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            encoder += [nn.Linear(hidden, hidden), nn.SiLU()]
            decoder += [nn.Linear(hidden, hidden), nn.SiLU()]
        self.encoder = nn.Sequential(*encoder, nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(*decoder, nn.Linear(hidden, 28 * 28), nn.Unflatten(1, (1, 28, 28)))


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per image: Bernoulli reconstruction (summed over pixels) + beta * KL(q(z|x) || N(0, I)),
    KL = -1/2 sum(1 + logvar - mean^2 - exp(logvar)). Returns (total, reconstruction, KL), batch means."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(1)).mean()
    return recon + beta * kl, recon, kl
