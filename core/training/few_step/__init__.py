"""Few-step generators on the flow path, trained beside reflow (core/labs/objectives.py): one family of trainers.

Every method lives on flow matching's path x_t = (1 - t) x_0 + t eps, t in [0, 1], t = 1 pure noise
(core/diffusion/flow.py), and is a `base.FewStepTrainer`: the one diffusion trainer's loop (optimiser step with
its divergence guard, learning-rate schedule, EMA copy, flat buffers, metrics records of step, loss, lr,
seconds) with the method's own loss, and `sample(noise, nfe)` by the method's own multistep rule.

- consistency: consistency distillation from a flow teacher and consistency training without one (Song et al.
  2023; Song & Dhariwal 2023), f(x, t) = x - t F(x, t); the multistep consistency sampler.
- shortcut: shortcut models (Frans et al. 2024), one network s(x_t, t, d) conditioned on the step size d.
- meanflow: MeanFlow (Geng et al. 2025), the average velocity u(z, r, t) and its JVP identity.
- progressive: progressive distillation (Salimans & Ho 2022), halving a flow teacher's Euler steps per round.
- methods: the registry (`METHODS`) and `few_step_trainer`, which builds any of them alike (same data, network
  size, budget and seed), so a lab can put them side by side.

Callers import the module they use (`from core.training.few_step import methods`); nothing is re-exported here,
so each name has one address.
"""
