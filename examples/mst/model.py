"""MST-Tiny: the Masked Spiking Transformer (Swin with BatchNorm and QCFS) scaled down to
Fashion-MNIST.

Every linear map reads either the analog image (patch embedding) or spike-carrying tensors
(QCFS outputs, or the residual stream, which is a sum of QCFS outputs), so each QCFS becomes an
IF population after conversion. Data flow of one block (x is the residual stream, [B, N, C]):

    h = QCFS(BN(x));  x = x + Attention(h)         # windows, shifted on odd blocks
    h = QCFS(BN(x));  x = x + QCFS(fc2(QCFS(fc1(h))))

Variant "official" (MSTConfig.variant): the block structure of the MST authors' network, so that
their checkpoints (examples/mst/import_official.py) load into this class. It differs in three
places: the second BatchNorm normalises the residual stream itself, x = BN(x); x = x + MLP(QCFS(x));
with `mlp_norm` a BatchNorm follows fc1 and fc2 (their ImageNet configuration); the network ends
in a LayerNorm over each token's channels (no QCFS) before pooling and the head; and the
patch-merging reduction has no bias. Its input is the per-channel normalised image.

Attention in its spiking form (per window and head):
    q, k, v = QCFS(Wq h), QCFS(Wk h), QCFS(Wv h);  q, k = RSM(q), RSM(k)
    a = RSM(QCFS(q k^T * d^-1/2)) + rel_pos_bias (+ shift mask);  a = softmax(a)
    out = QCFS(proj(QCFS(a v)))
"""
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from qcfs import QCFS, SpikeMask

SHIFT_MASK_VALUE = -100.0   # Swin's value for pairs of tokens from different shifted regions


@dataclass
class MSTConfig:
    image_size: int = 32
    in_channels: int = 1
    patch: int = 4
    embed_dim: int = 48
    depths: tuple = (2, 2)
    heads: tuple = (3, 6)
    window: int = 4
    mlp_ratio: float = 2.0
    classes: int = 10
    levels: int = 8            # QCFS quantisation levels L
    init_lambda: float = 2.0   # initial QCFS threshold, as MST
    mask_ratio: float = 0.0    # RSM ratio on q, k and attention-score spikes (the MST code)
    mask_all: bool = False     # also mask MLP inputs and the attention projection input (paper text)
    variant: str = "tiny"      # "tiny" (ours) or "official" (the MST authors' block and ending)
    mlp_norm: bool = False     # official only: BatchNorm after fc1 and after fc2 (their ImageNet config)
    layer_norm_eps: float = 1e-5   # official only: eps of the final LayerNorm

    def __post_init__(self):
        if self.variant not in ("tiny", "official"):
            raise ValueError(f"MSTConfig.variant {self.variant!r}: expected 'tiny' or 'official'")
        if self.mlp_norm and self.variant != "official":
            raise ValueError("MSTConfig.mlp_norm needs variant 'official'")

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for k in ("depths", "heads"):
            if k in d:
                d[k] = tuple(int(x) for x in d[k])
        return cls(**d)


def tokens_bn(bn, x):
    """BatchNorm1d over the channel axis of a token tensor [B, N, C] (statistics over B and N)."""
    b, n, c = x.shape
    return bn(x.reshape(b * n, c)).view(b, n, c)


def relative_position_index(window):
    """[w*w, w*w] index into the (2w-1)^2 bias table, as Swin builds it."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing="ij")).flatten(1)          # [2, w*w]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x, window):
    """[B, H, W, C] -> [B * nW, w*w, C]."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows, window, h, w):
    """[B * nW, w*w, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shift_attention_mask(resolution, window, shift):
    """[nW, w*w, w*w]: 0 within a region of the cyclically shifted map, SHIFT_MASK_VALUE across."""
    h = w = resolution
    region = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[:, hs, ws, :] = label
            label += 1
    ids = window_partition(region, window).squeeze(-1)                 # [nW, w*w]
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.where(diff != 0, torch.tensor(SHIFT_MASK_VALUE), torch.tensor(0.0))


class WindowAttention(nn.Module):
    def __init__(self, dim, heads, window, cfg):
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        new_act = lambda: QCFS(cfg.levels, cfg.init_lambda)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.act_q, self.act_k, self.act_v = new_act(), new_act(), new_act()
        self.mask_q, self.mask_k = SpikeMask(cfg.mask_ratio), SpikeMask(cfg.mask_ratio)
        self.act_attn = new_act()
        self.mask_attn = SpikeMask(cfg.mask_ratio)
        self.rel_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        index = relative_position_index(window).reshape(-1)
        # one-hot lookup as a matrix product: cheaper to train than index backward on CPU
        self.register_buffer("rel_onehot", F.one_hot(index, (2 * window - 1) ** 2).float(),
                             persistent=False)
        self.act_av = new_act()
        self.mask_proj = SpikeMask(cfg.mask_ratio if cfg.mask_all else 0.0)
        self.proj = nn.Linear(dim, dim)
        self.act_proj = new_act()

    def position_bias(self):
        """[heads, w*w, w*w] relative position bias."""
        n = self.window * self.window
        return (self.rel_onehot @ self.rel_bias).reshape(n, n, -1).permute(2, 0, 1)

    def forward(self, x, shift_mask=None):
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q = self.mask_q(self.act_q(qkv[0]))
        k = self.mask_k(self.act_k(qkv[1]))
        v = self.act_v(qkv[2])
        attn = self.mask_attn(self.act_attn((q @ k.transpose(-2, -1)) * self.scale))
        attn = attn + self.position_bias().unsqueeze(0)
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + shift_mask[None, :, None]
            attn = attn.view(bw, self.heads, n, n)
        out = self.act_av(attn.softmax(dim=-1) @ v)
        out = out.transpose(1, 2).reshape(bw, n, c)
        return self.act_proj(self.proj(self.mask_proj(out)))


class SwinBlock(nn.Module):
    def __init__(self, dim, resolution, heads, window, shift, cfg):
        super().__init__()
        if resolution <= window:          # one window covers the map: no shift (as Swin)
            window, shift = resolution, 0
        self.resolution, self.window, self.shift = resolution, window, shift
        new_act = lambda: QCFS(cfg.levels, cfg.init_lambda)
        self.norm1, self.act1 = nn.BatchNorm1d(dim), new_act()
        self.attn = WindowAttention(dim, heads, window, cfg)
        self.norm2, self.act2 = nn.BatchNorm1d(dim), new_act()
        hidden = int(dim * cfg.mlp_ratio)
        mlp_mask = cfg.mask_ratio if cfg.mask_all else 0.0
        self.mask_fc1, self.fc1, self.act_fc1 = SpikeMask(mlp_mask), nn.Linear(dim, hidden), new_act()
        self.mask_fc2, self.fc2, self.act_fc2 = SpikeMask(mlp_mask), nn.Linear(hidden, dim), new_act()
        self.official = cfg.variant == "official"
        self.fc1_norm = nn.BatchNorm1d(hidden) if cfg.mlp_norm else None
        self.fc2_norm = nn.BatchNorm1d(dim) if cfg.mlp_norm else None
        mask = shift_attention_mask(resolution, window, shift) if shift else None
        self.register_buffer("shift_mask", mask, persistent=False)

    def attention_branch(self, h):
        b, n, c = h.shape
        r, w, s = self.resolution, self.window, self.shift
        h = h.view(b, r, r, c)
        if s:
            h = torch.roll(h, shifts=(-s, -s), dims=(1, 2))
        h = self.attn(window_partition(h, w), self.shift_mask)
        h = window_reverse(h, w, r, r)
        if s:
            h = torch.roll(h, shifts=(s, s), dims=(1, 2))
        return h.reshape(b, n, c)

    def forward(self, x):
        x = x + self.attention_branch(self.act1(tokens_bn(self.norm1, x)))
        if self.official:         # the authors' block: BN2 normalises the stream itself
            x = tokens_bn(self.norm2, x)
            h = self.act2(x)
        else:
            h = self.act2(tokens_bn(self.norm2, x))
        h = self.fc1(self.mask_fc1(h))
        if self.fc1_norm is not None:
            h = tokens_bn(self.fc1_norm, h)
        h = self.fc2(self.mask_fc2(self.act_fc1(h)))
        if self.fc2_norm is not None:
            h = tokens_bn(self.fc2_norm, h)
        return x + self.act_fc2(h)


def merge_neighbours(x, resolution):
    """[B, r*r, C] -> [B, (r/2)^2, 4C], Swin's order of the 2x2 neighbours (x0, x1, x2, x3)."""
    b, _, c = x.shape
    x = x.view(b, resolution, resolution, c)
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return x.view(b, -1, 4 * c)


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated -> BN -> linear (4C -> 2C) -> QCFS."""

    def __init__(self, dim, resolution, cfg):
        super().__init__()
        self.resolution = resolution
        self.norm = nn.BatchNorm1d(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=cfg.variant != "official")
        self.act = QCFS(cfg.levels, cfg.init_lambda)

    def forward(self, x):
        x = tokens_bn(self.norm, merge_neighbours(x, self.resolution))
        return self.act(self.reduction(x))


class MSTTiny(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        cfg = cfg or MSTConfig()
        self.cfg = cfg
        dim, res = cfg.embed_dim, cfg.image_size // cfg.patch
        self.patch_embed = nn.Conv2d(cfg.in_channels, dim, cfg.patch, stride=cfg.patch)
        self.embed_norm = nn.BatchNorm2d(dim)
        self.embed_act = QCFS(cfg.levels, cfg.init_lambda)
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.heads)):
            self.stages.append(nn.ModuleList(
                SwinBlock(dim, res, heads, cfg.window, (cfg.window // 2) if j % 2 else 0, cfg)
                for j in range(depth)))
            if i + 1 < len(cfg.depths):
                self.merges.append(PatchMerging(dim, res, cfg))
                dim, res = dim * 2, res // 2
        if cfg.variant == "official":   # LayerNorm per token, no activation, then pool and head
            self.final_norm = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        else:
            self.norm = nn.BatchNorm1d(dim)
            self.act = QCFS(cfg.levels, cfg.init_lambda)
        self.head = nn.Linear(dim, cfg.classes)
        self.apply(_init_weights)

    def forward(self, image):
        x = self.embed_act(self.embed_norm(self.patch_embed(image)))
        x = x.flatten(2).transpose(1, 2)                                  # [B, N, C]
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            if i < len(self.merges):
                x = self.merges[i](x)
        if self.cfg.variant == "official":
            x = self.final_norm(x)
        else:
            x = self.act(tokens_bn(self.norm, x))
        return self.head(x.mean(dim=1))

    def set_mask_ratio(self, ratio, mask_all=None):
        """Changes the RSM ratio of every mask (e.g. to fine-tune a ratio-0 model)."""
        self.cfg.mask_ratio = ratio
        if mask_all is not None:
            self.cfg.mask_all = mask_all
        for name, m in self.named_modules():
            if isinstance(m, SpikeMask):
                always = name.endswith(("mask_q", "mask_k", "mask_attn"))
                m.ratio = ratio if (always or self.cfg.mask_all) else 0.0


def _init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())
