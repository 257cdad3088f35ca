"""A synthetic checkpoint in the layout of the MST authors' code (bic-L/Masked-Spiking-Transformer,
models/mst.py after their QCFS replacement), written from the facts read there, not from
examples/mst/import_official.py:

- patch embedding `patch_embed.proj` (conv, kernel = stride = patch), `patch_embed.norm`
  (BatchNorm1d over the embedding), activation `patch_embed.proj_if`;
- stage i is `layers.i`, block j `layers.i.blocks.j`: `norm1`, `shortcut1_if`, `attn.qkv`
  (with bias), `attn.{q,k,v,attn,attn_v}_if`, `attn.proj`, `attn.proj_if`,
  `attn.relative_position_bias_table` ((2w-1)^2, heads) and the buffer
  `attn.relative_position_index` (w^2, w^2), `norm2`, `shortcut2_if`, `mlp.fc1`, `mlp.fc1_if`,
  `mlp.fc2`, `mlp.fc2_if`, with `mlp.norm1` / `mlp.norm2` BatchNorms after fc1 / fc2 only in
  the ImageNet configuration; odd blocks whose map is larger than the window carry the shifted
  window mask buffer `attn_mask` (windows, w^2, w^2) with 0 / -100;
- `layers.i.downsample` (all stages but the last): `norm` (BatchNorm1d of 4C), `reduction`
  (4C -> 2C, no bias), `reduction_if`;
- `norm` (LayerNorm of the last width) and `head`;
- every activation's threshold is `<name>_if.up`, shape (1,).

official_checkpoint(cfg) returns the official state_dict and, for the same tensors, the
state_dict of examples/mst/model.py's class (variant "official") under our own names.
"""
import torch


def _bn(prefix, ours, n, rows, gen):
    rows.append((prefix + "weight", ours + "weight", torch.rand(n, generator=gen) + 0.5))
    rows.append((prefix + "bias", ours + "bias", torch.rand(n, generator=gen) * 0.4 - 0.2))
    rows.append((prefix + "running_mean", ours + "running_mean", torch.randn(n, generator=gen) * 0.3))
    rows.append((prefix + "running_var", ours + "running_var", torch.rand(n, generator=gen) * 1.5 + 0.5))
    rows.append((prefix + "num_batches_tracked", ours + "num_batches_tracked", torch.tensor(100)))


def _linear(prefix, ours, n_out, n_in, rows, gen, bias=True):
    rows.append((prefix + "weight", ours + "weight", torch.randn(n_out, n_in, generator=gen) * 1.5 / n_in ** 0.5))
    if bias:
        rows.append((prefix + "bias", ours + "bias", torch.randn(n_out, generator=gen) * 0.2))


def _threshold(key, ours, rows, gen):
    rows.append((key, ours, torch.rand(1, generator=gen) * 1.5 + 0.5))


def position_index(w):
    """Their relative_position_index: (dy + w - 1) * (2w - 1) + (dx + w - 1) for every token pair."""
    index = torch.zeros(w * w, w * w, dtype=torch.int64)
    for a in range(w * w):
        for b in range(w * w):
            dy, dx = a // w - b // w, a % w - b % w
            index[a, b] = (dy + w - 1) * (2 * w - 1) + (dx + w - 1)
    return index


def shift_mask(res, w, shift):
    """Their attn_mask: tokens of the cyclically shifted map in different regions get -100."""
    def region(i):
        return 0 if i < res - w else (1 if i < res - shift else 2)
    windows = (res // w) ** 2
    mask = torch.zeros(windows, w * w, w * w)
    for win in range(windows):
        wy, wx = divmod(win, res // w)
        labels = [region(wy * w + t // w) * 3 + region(wx * w + t % w) for t in range(w * w)]
        for a in range(w * w):
            for b in range(w * w):
                mask[win, a, b] = 0.0 if labels[a] == labels[b] else -100.0
    return mask


def official_checkpoint(cfg, seed=0):
    """cfg: img_size, patch, in_chans, embed_dim, depths, heads, window, mlp_ratio, classes, mlp_norm."""
    gen = torch.Generator().manual_seed(seed)
    rows = []   # (their key, our key or None for buffers we compute, tensor)
    e, p = cfg["embed_dim"], cfg["patch"]
    rows.append(("patch_embed.proj.weight", "patch_embed.weight",
                 torch.randn(e, cfg["in_chans"], p, p, generator=gen) * 2.0 / (cfg["in_chans"] * p * p) ** 0.5))
    rows.append(("patch_embed.proj.bias", "patch_embed.bias", torch.randn(e, generator=gen) * 0.2))
    _bn("patch_embed.norm.", "embed_norm.", e, rows, gen)
    _threshold("patch_embed.proj_if.up", "embed_act.lam", rows, gen)
    res, dim = cfg["img_size"] // p, e
    for i, (depth, heads) in enumerate(zip(cfg["depths"], cfg["heads"])):
        w = min(cfg["window"], res)
        for j in range(depth):
            L, O = f"layers.{i}.blocks.{j}.", f"stages.{i}.{j}."
            _bn(L + "norm1.", O + "norm1.", dim, rows, gen)
            _threshold(L + "shortcut1_if.up", O + "act1.lam", rows, gen)
            rows.append((L + "attn.relative_position_bias_table", O + "attn.rel_bias",
                         torch.randn((2 * w - 1) ** 2, heads, generator=gen) * 0.5))
            rows.append((L + "attn.relative_position_index", None, position_index(w)))
            _linear(L + "attn.qkv.", O + "attn.qkv.", 3 * dim, dim, rows, gen)
            for theirs, ours in (("q_if", "act_q"), ("k_if", "act_k"), ("v_if", "act_v"), ("attn_if", "act_attn"),
                                 ("attn_v_if", "act_av"), ("proj_if", "act_proj")):
                _threshold(L + f"attn.{theirs}.up", O + f"attn.{ours}.lam", rows, gen)
            _linear(L + "attn.proj.", O + "attn.proj.", dim, dim, rows, gen)
            _bn(L + "norm2.", O + "norm2.", dim, rows, gen)
            _threshold(L + "shortcut2_if.up", O + "act2.lam", rows, gen)
            hidden = int(dim * cfg["mlp_ratio"])
            _linear(L + "mlp.fc1.", O + "fc1.", hidden, dim, rows, gen)
            if cfg["mlp_norm"]:
                _bn(L + "mlp.norm1.", O + "fc1_norm.", hidden, rows, gen)
            _threshold(L + "mlp.fc1_if.up", O + "act_fc1.lam", rows, gen)
            _linear(L + "mlp.fc2.", O + "fc2.", dim, hidden, rows, gen)
            if cfg["mlp_norm"]:
                _bn(L + "mlp.norm2.", O + "fc2_norm.", dim, rows, gen)
            _threshold(L + "mlp.fc2_if.up", O + "act_fc2.lam", rows, gen)
            if j % 2 == 1 and res > cfg["window"]:
                rows.append((L + "attn_mask", None, shift_mask(res, w, w // 2)))
        if i + 1 < len(cfg["depths"]):
            _bn(f"layers.{i}.downsample.norm.", f"merges.{i}.norm.", 4 * dim, rows, gen)
            _linear(f"layers.{i}.downsample.reduction.", f"merges.{i}.reduction.", 2 * dim, 4 * dim, rows, gen,
                    bias=False)
            _threshold(f"layers.{i}.downsample.reduction_if.up", f"merges.{i}.act.lam", rows, gen)
            res, dim = res // 2, dim * 2
    rows.append(("norm.weight", "final_norm.weight", torch.rand(dim, generator=gen) + 0.5))
    rows.append(("norm.bias", "final_norm.bias", torch.randn(dim, generator=gen) * 0.1))
    _linear("head.", "head.", cfg["classes"], dim, rows, gen)
    theirs = {k: v for k, _, v in rows}
    ours = {o: (v.reshape(()) if o.endswith(".lam") else v) for _, o, v in rows if o is not None}
    return theirs, ours
