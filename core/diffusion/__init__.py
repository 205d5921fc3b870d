"""The diffusion engine, flat like k-diffusion: schedules, the forward process, the flow path, denoisers (one
interface, D(x, sigma) -> x0, in sigma space), the Gaussian-mixture law that gives exact answers, samplers,
trajectories, drift fields, Brownian noise, likelihoods and inversion."""
