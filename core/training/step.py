"""One optimiser step with the divergence guard, shared by the diffusion, VAE and classifier trainers.

The guard looks at the loss before backward: a NaN or infinite loss (an overflow, a learning rate too high)
stops the run with a sentence, and since nothing has been touched yet, the model keeps the weights of the
last good step and the optimizer its moments, so the run can go on once the cause is gone.
"""

from __future__ import annotations

import torch

from core.errors import BadInputError


def loss_is_finite(loss: torch.Tensor, across_ranks: bool = False) -> bool:
    """Whether the (scalar) loss is finite; with `across_ranks`, on every rank of the running process group,
    so that all ranks stop together and none waits in DDP's backward forever."""
    finite = torch.isfinite(loss.detach())
    if not across_ranks:
        return bool(finite)
    finite = finite.to(torch.int32).reshape(1)
    torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    return bool(finite.item())


def diverged(step: int, loss: torch.Tensor) -> BadInputError:
    """The sentence for a run whose loss at `step` (counted from 1) is not finite, here or on another rank."""
    value = loss.item() if not torch.isfinite(loss) else "non-finite on another process"
    return BadInputError(
        f"Training diverged at step {step:,}: the loss became {value}. The model keeps its weights from the "
        "step before; try a smaller learning rate."
    )


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    step: int,
    *,
    clip: float | None = None,
    flat_grad: torch.Tensor | None = None,
    across_ranks: bool = False,
) -> torch.Tensor | None:
    """Take one step of `optimizer` down the scalar `loss`, the run's step number `step` (counted from 1).

    1. A loss that is not finite (on any rank, with `across_ranks`) raises `diverged`'s BadInputError
       before anything changes.
    2. The gradients are cleared: set to None, or, when `flat_grad` is the one flat buffer that every
       parameter's .grad is a view into (core/training/diffusion.flatten_parameters), zeroed in place so
       that the views stay and backward accumulates into them.
    3. backward, then with `clip` the gradients are scaled to a total L2 norm of at most `clip`
       (`math.inf`: measured only).
    4. optimizer.step().

    Returns the gradients' total norm before clipping (a 0-d tensor), or None without `clip`.
    """
    if not loss_is_finite(loss, across_ranks):
        raise diverged(step, loss)
    if flat_grad is not None:
        flat_grad.zero_()
    else:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = None if clip is None else _clip(optimizer, clip, flat_grad)
    optimizer.step()
    return norm


def _clip(optimizer: torch.optim.Optimizer, clip: float, flat_grad: torch.Tensor | None) -> torch.Tensor:
    if flat_grad is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        return torch.nn.utils.clip_grad_norm_(params, clip)
    norm = flat_grad.norm()  # one buffer: one norm and at most one multiply, no per-tensor loop
    if norm > clip:
        flat_grad.mul_(clip / (norm + 1e-6))
    return norm
