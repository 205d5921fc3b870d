"""Trainable denoiser networks: small MLPs for toy and latent data (later: the VAE and UNet presets)."""
