"""Training: the one diffusion trainer, the VAE and classifier loops, learning rates, data-parallel runs, the
checkpoints a page training keeps in memory, and the time budget of page trainings."""
