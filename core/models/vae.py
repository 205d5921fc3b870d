"""A convolutional VAE with a 2-D latent for 28x28 digits (Kingma & Welling 2014).

Encoder: 28 -> 14 -> 7 with strided convolutions, then a linear layer to the mean and log-variance of a
diagonal Gaussian q(z | x) in R^2. Decoder: the mirror image, ending in one logit per pixel (a Bernoulli
likelihood for pixel intensities in [0, 1]). The latent is 2-D so that the whole latent space can be
drawn, at the price of blurrier reconstructions than a larger latent would give.
"""

from __future__ import annotations

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn
from torch.nn import functional as F


class ConvVAE(nn.Module, PyTorchModelHubMixin):
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


def vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per image: Bernoulli reconstruction (summed over pixels) + beta * KL(q(z|x) || N(0, I)),
    KL = -1/2 sum(1 + logvar - mean^2 - exp(logvar)). Returns (total, reconstruction, KL), batch means."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(1)).mean()
    return recon + beta * kl, recon, kl
