"""Guidance measured (the Guidance page): `sweep` (what each method trades on both conditional MNIST models),
`exact` (every method on a two-class Gaussian mixture whose densities are known), `fields` (the latent plane's
guided fields)."""
