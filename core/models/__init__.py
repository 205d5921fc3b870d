"""Networks: the UNet preset (diffusers' UNet2DModel) for images, MLP denoisers for toy and latent data, the 2-D
VAE, the LeNet classifier that reads digits, seeded initialisation and weight fingerprints."""
