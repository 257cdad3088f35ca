"""Random Spike Masking: keep fraction 1 - ratio, no rescaling, fresh per pass, which tensors."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "mst"))
from model import MSTConfig, MSTTiny  # noqa: E402
from qcfs import SpikeMask, spike_mask  # noqa: E402


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_keep_fraction(ratio):
    torch.manual_seed(0)
    n = 1_000_000
    kept = spike_mask(torch.ones(n), ratio)
    assert set(kept.unique().tolist()) <= {0.0, 1.0}            # no 1/(1-ratio) rescaling
    sigma = ((1 - ratio) * ratio / n) ** 0.5
    assert abs(kept.mean().item() - (1 - ratio)) < 5 * sigma


def test_fresh_mask_each_pass_and_identity_at_zero():
    x = torch.ones(10000)
    m = SpikeMask(0.5)
    assert not torch.equal(m(x), m(x))
    assert torch.equal(SpikeMask(0.0)(x), x)


def test_masked_tensors_follow_the_mst_code_or_the_paper():
    def ratios(model):
        return {n.split(".")[-1]: m.ratio for n, m in model.named_modules() if isinstance(m, SpikeMask)}

    code = ratios(MSTTiny(MSTConfig(mask_ratio=0.75)))
    assert code == {"mask_q": 0.75, "mask_k": 0.75, "mask_attn": 0.75,
                    "mask_proj": 0.0, "mask_fc1": 0.0, "mask_fc2": 0.0}
    paper = ratios(MSTTiny(MSTConfig(mask_ratio=0.75, mask_all=True)))
    assert set(paper.values()) == {0.75}
    model = MSTTiny(MSTConfig())
    model.set_mask_ratio(0.5)
    assert ratios(model)["mask_q"] == 0.5 and ratios(model)["mask_fc1"] == 0.0
