"""QCFS activation and Random Spike Masking (RSM), the two ingredients that make the MST
convertible and maskable.

QCFS (Bu et al., ICLR 2022): h(x) = lam * floor(clamp(x / lam, 0, 1) * L + 1/2) / L.
After conversion each QCFS becomes an IF neuron with threshold lam, spike value lam, soft reset
and v(0) = lam / 2; its firing rate times lam then approximates h(x) (exactly at T = L for
constant input). The floor uses a straight-through gradient so lam and the inputs train.

RSM as the MST code does it: keep = rand(shape) > ratio; x = x * keep. Per element, drawn anew
at every forward pass (every time step in the SNN), no 1/(1 - ratio) rescaling, active in
training and in evaluation alike.
"""
import torch
from torch import nn


class _QCFSFunction(torch.autograd.Function):
    """QCFS fused into one autograd node (training speed): the floor passes gradients straight
    through, the clamp passes them only inside [0, lam] (as torch.clamp would)."""

    @staticmethod
    def forward(ctx, x, lam, levels):
        u = x / lam
        q = torch.floor(torch.clamp(u, 0.0, 1.0) * levels + 0.5) / levels
        ctx.save_for_backward(u, q)
        return q * lam

    @staticmethod
    def backward(ctx, grad):
        u, q = ctx.saved_tensors
        inside = ((u >= 0.0) & (u <= 1.0)).to(grad.dtype)
        grad_x = grad * inside
        # d(lam * q(x / lam)) / d lam = q - (x / lam) * inside, with the straight-through floor
        grad_lam = (grad * (q - u * inside)).sum().reshape(())
        return grad_x, grad_lam, None


def qcfs(x, lam, levels):
    """The QCFS function; lam is a 0-d tensor (trainable) or a float."""
    if not torch.is_tensor(lam):
        lam = torch.tensor(float(lam), dtype=x.dtype)
    return _QCFSFunction.apply(x, lam, levels)


class QCFS(nn.Module):
    """QCFS activation with one trainable threshold lam per layer."""

    def __init__(self, levels=8, init_lambda=2.0):
        super().__init__()
        self.levels = levels
        self.lam = nn.Parameter(torch.tensor(float(init_lambda)))

    def forward(self, x):
        return qcfs(x, self.lam, self.levels)

    def extra_repr(self):
        return f"levels={self.levels}"


def spike_mask(x, ratio):
    """RSM: drops each element with probability `ratio`, no rescaling."""
    if ratio <= 0.0:
        return x
    return x * (torch.rand_like(x) > ratio).to(x.dtype)


class SpikeMask(nn.Module):
    """RSM on the spike tensor passing through; `ratio` 0 makes it the identity."""

    def __init__(self, ratio=0.0):
        super().__init__()
        self.ratio = float(ratio)

    def forward(self, x):
        return spike_mask(x, self.ratio)

    def extra_repr(self):
        return f"ratio={self.ratio}"
