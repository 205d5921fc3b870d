"""The Ground truth page's logic: a 2-D Gaussian mixture, whose every quantity is known in closed form, against
what samplers and learned models do. One module per section of the page, no Streamlit:

- noise: the noise range every section shares (EDM's Karras grid, sigma 80 to 0.002) and the common start points.
- mixtures: the mixture a person shapes (presets, spread, distance) or fits to points, its view box and grid,
  and the toy-lab model learnt from its draws (training data, training time).
- accuracy: every sampler at NFE 1 to 200 against the exact ODE end point or its own fine run on the same
  Brownian path, fitted orders, and the exactly known moments (the weak view).
- probe: each sampler's path from one point at one noise level beside the exact ODE path.
- likelihood: log densities by the probability-flow ODE (exact denoiser, a toy model, the latent MNIST model)
  against the closed form or a kernel density estimate, on a grid and on held-out points.
- memorisation: the optimal denoiser of a finite training set, how near samples land to it, and the study over
  training-set size and training time.

Callers import the section they use (`from core.labs.ground_truth import mixtures`); nothing is re-exported
here, so each name has one address and a test that patches a module's constant patches what its code reads.
Everything runs in the mixture's own units; the variance-exploding state x = x_0 + sigma eps is what the
samplers move.
"""
