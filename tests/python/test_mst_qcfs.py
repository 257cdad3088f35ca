"""QCFS: closed form, gradients, and the IF neuron's exactness at T = L (Bu et al., ICLR 2022)."""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst"))
from qcfs import QCFS, qcfs  # noqa: E402


def closed_form(x, lam, levels):
    return lam * np.clip(np.floor(x * levels / lam + 0.5), 0, levels) / levels


@pytest.mark.parametrize("lam,levels", [(2.0, 8), (0.7, 4), (3.3, 16)])
def test_values_match_closed_form(lam, levels):
    x = np.random.default_rng(1).uniform(-1, 1.5 * lam, 10000)
    got = qcfs(torch.from_numpy(x), lam, levels).numpy()
    np.testing.assert_allclose(got, closed_form(x, lam, levels), rtol=0, atol=1e-12)
    assert len(np.unique(np.round(got / lam * levels, 9))) == levels + 1   # 0 .. L


def test_gradients_match_straight_through_formula():
    class FloorSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return torch.floor(x)

        @staticmethod
        def backward(ctx, g):
            return g

    torch.manual_seed(0)
    x1 = (torch.randn(500, dtype=torch.float64) * 2).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    act = QCFS(8, 1.5).double()
    lam2 = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(500, dtype=torch.float64)
    (act(x1) * g).sum().backward()
    (FloorSTE.apply(torch.clamp(x2 / lam2, 0, 1) * 8 + 0.5) / 8 * lam2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(act.lam.grad, lam2.grad)


def test_if_neuron_equals_qcfs_at_T_equals_L():
    """Soft-reset IF, v0 = theta/2, constant input x for T = L ticks: rate * lam == QCFS(x)."""
    lam, levels = 1.7, 8
    x = torch.from_numpy(np.random.default_rng(2).uniform(-0.5, 2.5, 5000))
    v, count = torch.full_like(x, lam / 2), torch.zeros_like(x)
    for _ in range(levels):
        v = v + x
        spike = (v >= lam).double()
        v, count = v - spike * lam, count + spike
    torch.testing.assert_close(count * lam / levels, qcfs(x, lam, levels))
