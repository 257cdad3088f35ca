"""Imports a checkpoint of the MST authors' code (bic-L/Masked-Spiking-Transformer) as a quantal
model file.

    /usr/bin/python3 examples/mst/import_official.py CHECKPOINT.pth --config cifar10 \
        --masking-ratio 0.75 --out mst_cifar10_r75.h5

What is read: the checkpoint's `model` entry (a state_dict; a bare state_dict is accepted too),
in the layout their `MaskedSpikingTransformer` writes after their QCFS replacement (every
activation `*_if` with its threshold `up`). What the state_dict does not hold comes from the
configuration: input size, QCFS levels L (their training hard-codes 16), masking ratio (a command
line argument of theirs, so required here), the input normalisation and whether the MLP has
BatchNorms (their `--dataset imagenet`). Every shape in the file is checked against the
configuration; a key, a shape or a buffer this importer does not know is an error naming it,
never skipped.

The network is loaded into our PyTorch class (model.py, variant "official") and written by
export.py. Input of the written file: uint8 images (C, H, W) of the configured size (their CIFAR
pipeline resizes 32 x 32 to 224 x 224 first: give quantal the resized images), scaled by 1/255,
the per-channel normalisation folded into the patch convolution.
"""
import argparse
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
from model import MSTConfig, MSTTiny, relative_position_index  # noqa: E402

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)        # their data/build.py
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)       # timm's defaults
SWIN_T = dict(img_size=224, patch=4, in_chans=3, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24),
              window=7, mlp_ratio=4.0, levels=16, ln_eps=1e-5)
CONFIGS = {   # configs/mst/MST.yaml and main.py's dataset switch
    "cifar10": dict(SWIN_T, classes=10, mlp_norm=False, mean=CIFAR_MEAN, std=CIFAR_STD),
    "cifar100": dict(SWIN_T, classes=100, mlp_norm=False, mean=CIFAR_MEAN, std=CIFAR_STD),
    "imagenet": dict(SWIN_T, classes=1000, mlp_norm=True, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    "custom": {},
}
FIELDS = ("img_size", "patch", "in_chans", "embed_dim", "depths", "heads", "window", "mlp_ratio", "levels",
          "ln_eps", "classes", "mlp_norm", "mean", "std")
# Training state beside the weights in their save_checkpoint; not part of the network.
TRAINING_ENTRIES = {"optimizer", "lr_scheduler", "max_accuracy", "scaler", "epoch", "config"}


class ImportError_(ValueError):
    pass


def resolve_config(name, overrides):
    """The preset `name` with every non-None override applied; every field must end up set."""
    cfg = dict(CONFIGS[name])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    missing = [k for k in FIELDS if k not in cfg]
    if missing:
        raise ImportError_(f"--config {name}: set " + ", ".join("--" + k.replace("_", "-") for k in missing))
    if len(cfg["depths"]) != len(cfg["heads"]):
        raise ImportError_(f"depths {cfg['depths']} and heads {cfg['heads']} differ in length")
    for key in ("mean", "std"):
        if len(cfg[key]) != cfg["in_chans"]:
            raise ImportError_(f"{key} {cfg[key]} has not one value per input channel ({cfg['in_chans']})")
    if cfg["img_size"] % cfg["patch"]:
        raise ImportError_(f"image size {cfg['img_size']} is not a multiple of the patch size {cfg['patch']}")
    return cfg


def model_config(cfg, masking_ratio):
    return MSTConfig(image_size=cfg["img_size"], in_channels=cfg["in_chans"], patch=cfg["patch"],
                     embed_dim=cfg["embed_dim"], depths=tuple(cfg["depths"]), heads=tuple(cfg["heads"]),
                     window=cfg["window"], mlp_ratio=cfg["mlp_ratio"], classes=cfg["classes"],
                     levels=cfg["levels"], mask_ratio=masking_ratio, variant="official",
                     mlp_norm=cfg["mlp_norm"], layer_norm_eps=cfg["ln_eps"])


# Their module names -> ours (model.py), per part of the network. A key that matches none of these
# is not part of the network this importer knows.
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_RULES = [
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.\1"),
    (rf"patch_embed\.norm\.{_BN}", r"embed_norm.\1"),
    (r"patch_embed\.proj_if\.up", r"embed_act.lam"),
    (rf"layers\.(\d+)\.blocks\.(\d+)\.norm([12])\.{_BN}", r"stages.\1.\2.norm\3.\4"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.shortcut([12])_if\.up", r"stages.\1.\2.act\3.lam"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table", r"stages.\1.\2.attn.rel_bias"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)", r"stages.\1.\2.attn.\3.\4"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.([qkv])_if\.up", r"stages.\1.\2.attn.act_\3.lam"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.attn_if\.up", r"stages.\1.\2.attn.act_attn.lam"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.attn_v_if\.up", r"stages.\1.\2.attn.act_av.lam"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.attn\.proj_if\.up", r"stages.\1.\2.attn.act_proj.lam"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc([12])\.(weight|bias)", r"stages.\1.\2.fc\3.\4"),
    (rf"layers\.(\d+)\.blocks\.(\d+)\.mlp\.norm([12])\.{_BN}", r"stages.\1.\2.fc\3_norm.\4"),
    (r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc([12])_if\.up", r"stages.\1.\2.act_fc\3.lam"),
    (rf"layers\.(\d+)\.downsample\.norm\.{_BN}", r"merges.\1.norm.\2"),
    (r"layers\.(\d+)\.downsample\.reduction\.weight", r"merges.\1.reduction.weight"),
    (r"layers\.(\d+)\.downsample\.reduction_if\.up", r"merges.\1.act.lam"),
    (r"norm\.(weight|bias)", r"final_norm.\1"),
    (r"head\.(weight|bias)", r"head.\1"),
]
# Buffers they store that we compute: checked against ours, so a file from another geometry fails.
_DERIVED = [r"layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_index",
            r"layers\.(\d+)\.blocks\.(\d+)\.attn_mask"]


def _ours(key):
    for pattern, target in _RULES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    return None


def _derived(model, key):
    m = re.fullmatch(_DERIVED[0], key)
    if m:
        blk = model.stages[int(m[1])][int(m[2])]
        return relative_position_index(blk.window)
    m = re.fullmatch(_DERIVED[1], key)
    if m:
        return model.stages[int(m[1])][int(m[2])].shift_mask
    return None


def read_state_dict(path, trust=False):
    """Their checkpoint's weights; the training state beside them is accepted and not used.
    trust: unpickle anything (their save_checkpoint stores its yacs config and floats, which
    torch's weights-only loader refuses); only for files from a source one trusts."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:   # torch raises many kinds (pickle, zip, unsupported global)
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        hint = ("; if it is the authors' checkpoint from a source you trust, --trust-checkpoint reads "
                "its training state too (install python3-yacs for their config)") if not trust else ""
        raise ImportError_(f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}: {first}){hint}") from e
    if not isinstance(ckpt, dict):
        raise ImportError_(f"{path}: holds a {type(ckpt).__name__}, not a checkpoint dictionary")
    if "model" in ckpt:
        extra = sorted(set(ckpt) - TRAINING_ENTRIES - {"model"})
        if extra:
            raise ImportError_(f"{path}: unknown top-level entry {extra[0]!r} (known: model and "
                               f"{', '.join(sorted(TRAINING_ENTRIES))})")
        ckpt = ckpt["model"]
    for key, value in ckpt.items():
        if not torch.is_tensor(value):
            raise ImportError_(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor of a state_dict")
    return ckpt


def load_official(state, cfg, masking_ratio, path="checkpoint"):
    """An MSTTiny (variant official) holding the checkpoint's weights; every key of the checkpoint
    used or checked, every parameter and buffer of ours filled."""
    torch.manual_seed(0)   # the class initialises weights; all are overwritten, checked below
    model = MSTTiny(model_config(cfg, masking_ratio))
    ours = model.state_dict()
    filled = {}
    for key, value in state.items():
        if key == "absolute_pos_embed":
            raise ImportError_(f"{path}: {key!r}: absolute position embedding (ape) is not supported")
        expected = _derived(model, key)
        if expected is not None:
            if tuple(value.shape) != tuple(expected.shape) or not torch.equal(value.to(expected.dtype), expected):
                raise ImportError_(f"{path}: {key!r} {tuple(value.shape)} differs from the one the "
                                   f"configuration gives {tuple(expected.shape)}")
            continue
        mine = _ours(key)
        if mine is None or mine not in ours:
            raise ImportError_(f"{path}: unknown key {key!r} ({tuple(value.shape)}): not part of the MST "
                               f"network of this configuration" + (" (the configuration has no MLP BatchNorm: "
                                                                    "imagenet has)" if ".mlp.norm" in key else ""))
        shape = tuple(ours[mine].shape)
        if key.endswith("_if.up"):
            if tuple(value.shape) not in ((1,), ()):
                raise ImportError_(f"{path}: {key!r} has shape {tuple(value.shape)}, expected (1,)")
            value = value.reshape(())
        elif tuple(value.shape) != shape:
            raise ImportError_(f"{path}: {key!r} has shape {tuple(value.shape)}, the configuration gives {shape}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ImportError_(f"{path}: {key!r} holds non-finite values")
        filled[mine] = value.to(ours[mine].dtype)
    missing = [k for k in ours if k not in filled]
    if missing:
        raise ImportError_(f"{path}: missing key {_theirs(missing[0])!r}: {len(missing)} entries of the "
                           f"configured network are not in the checkpoint")
    model.load_state_dict(filled, strict=True)
    for name, m in model.named_modules():     # QCFS thresholds must be positive: they become IF thresholds
        if hasattr(m, "lam") and not float(m.lam) > 0:
            raise ImportError_(f"{path}: threshold of {name} is {float(m.lam)}, not positive")
    return model.eval()


def _theirs(our_key):
    """The official key that fills our parameter `our_key` (the rules read backwards), for naming
    what a checkpoint lacks."""
    for pattern, target in _RULES:
        rx = re.escape(target)
        for i in range(1, 5):
            rx = rx.replace(re.escape(f"\\{i}"), "([^.]+)")
        m = re.fullmatch(rx, our_key)
        if m:
            parts = iter(m.groups())
            theirs = re.sub(r"\([^()]*\)", lambda _: next(parts), pattern).replace("\\.", ".")
            if _ours(theirs) == our_key:    # the loose backwards match must hold forwards too
                return theirs
    return our_key


def input_spec(cfg):
    return dict(shape=(cfg["in_chans"], cfg["img_size"], cfg["img_size"]), scale=1.0 / 255.0,
                mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), pad_to=None)


def import_checkpoint(path, out, config="cifar10", masking_ratio=0.0, overrides=None, name=None, trust=False,
                      float64=False):
    cfg = resolve_config(config, overrides or {})
    if not 0.0 <= masking_ratio < 1.0:
        raise ImportError_(f"masking ratio {masking_ratio} is not in [0, 1)")
    model = load_official(read_state_dict(path, trust), cfg, masking_ratio, path)
    prov = {"source": "MST authors' checkpoint (bic-L/Masked-Spiking-Transformer)", "checkpoint": os.path.basename(path),
            "config": config, "importer": "examples/mst/import_official.py", "masking_ratio": masking_ratio}
    graph = export.export(model, out, name or f"mst-official-{config}-r{masking_ratio:g}", prov,
                          input_spec=input_spec(cfg), float64=float64)
    return model, graph


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("checkpoint", help="a .pth written by the MST authors' main.py (or their released checkpoints)")
    p.add_argument("--config", required=True, choices=sorted(CONFIGS),
                   help="cifar10, cifar100, imagenet (their MST.yaml, Swin-T) or custom (give every field)")
    p.add_argument("--masking-ratio", type=float, required=True,
                   help="the RSM ratio the model was trained with (their --masking_ratio; not in the checkpoint)")
    p.add_argument("--out", required=True, help="the quantal model file (.h5) to write")
    p.add_argument("--name", help="model name in the file")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle the whole checkpoint (their training state: floats, yacs config); "
                        "default: tensors and plain containers only")
    p.add_argument("--float64", action="store_true",
                   help="store weights as float64 (exactness checks against a float64 forward pass)")
    p.add_argument("--img-size", type=int)
    p.add_argument("--patch", type=int)
    p.add_argument("--in-chans", type=int)
    p.add_argument("--embed-dim", type=int)
    p.add_argument("--depths", type=int, nargs="+")
    p.add_argument("--heads", type=int, nargs="+")
    p.add_argument("--window", type=int)
    p.add_argument("--mlp-ratio", type=float)
    p.add_argument("--levels", type=int, help="QCFS levels L (their training: 16)")
    p.add_argument("--ln-eps", type=float, help="eps of the final LayerNorm (PyTorch's default 1e-5)")
    p.add_argument("--classes", type=int)
    p.add_argument("--mlp-norm", dest="mlp_norm", action="store_true", default=None,
                   help="BatchNorm after fc1 and fc2 (their --dataset imagenet)")
    p.add_argument("--no-mlp-norm", dest="mlp_norm", action="store_false")
    p.add_argument("--mean", type=float, nargs="+", help="per-channel input mean (after scaling to [0, 1])")
    p.add_argument("--std", type=float, nargs="+", help="per-channel input std")
    args = p.parse_args(argv)
    overrides = {k: getattr(args, k) for k in FIELDS}
    try:
        model, graph = import_checkpoint(args.checkpoint, args.out, args.config, args.masking_ratio, overrides,
                                         args.name, args.trust_checkpoint, args.float64)
    except ImportError_ as e:
        print(f"import_official.py: {e}", file=sys.stderr)
        sys.exit(2)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {params:,} parameters; {len(graph.populations)} populations, "
          f"{len(graph.projections)} projections, {len(graph.operators)} operators")


if __name__ == "__main__":
    main()
