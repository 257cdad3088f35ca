"""Trains MST-Tiny on Fashion-MNIST within a wall-clock budget.

Recipe: AdamW (no weight decay on thresholds, biases, norms and position-bias tables), label
smoothing, light augmentation (random placement of the 28x28 image inside the 32x32 input, i.e.
random crop with 2-pixel padding, and horizontal flips), linear warm-up and then a cosine learning
rate driven by *elapsed time* over the budget, so the run ends on time whatever the machine's
load. A checkpoint is written after every epoch, so a killed run still leaves a model.

    /usr/bin/python3 examples/mst/train.py --out examples/mst/models/mst_r0 --budget-min 55
    /usr/bin/python3 examples/mst/train.py --out examples/mst/models/mst_r50 --mask-ratio 0.5 \
        --init examples/mst/models/mst_r0.pt --lr 5e-4 --budget-min 15
"""
import argparse
import json
import math
import os
import sys
import time

# Idle OpenMP threads must sleep, not spin: on this shared 2-core machine spinning threads
# made training up to 5x slower. Must be set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from model import MSTConfig, MSTTiny, parameter_count  # noqa: E402

CROP_PAD = 2   # pixels of extra padding for random-crop augmentation


def augment(batch, rng):
    """Random crop (2-pixel padding) and random horizontal flip of a [B, 1, 32, 32] batch."""
    b, _, h, w = batch.shape
    padded = F.pad(batch, (CROP_PAD,) * 4)
    offsets = rng.integers(0, 2 * CROP_PAD + 1, size=(b, 2))
    out = torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(offsets)])
    flip = torch.from_numpy(rng.random(b) < 0.5)
    out[flip] = out[flip].flip(-1)
    return out


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim >= 2 and "rel_bias" not in name:
            decay.append(p)
        else:
            no_decay.append(p)   # biases, BN, QCFS thresholds, position-bias tables
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, inputs, labels, batch=500):
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        logits = model(inputs[i:i + batch])
        correct += (logits.argmax(1) == labels[i:i + batch]).sum().item()
    return correct / len(labels)


def save_checkpoint(path, model, info):
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "info": info}, path)


def load_checkpoint(path):
    ckpt = torch.load(path, map_location="cpu")
    model = MSTTiny(MSTConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt.get("info", {})


def build_model(args):
    if args.init:
        model, _ = load_checkpoint(args.init)
        model.set_mask_ratio(args.mask_ratio, args.mask_all)
        return model
    return MSTTiny(MSTConfig(embed_dim=args.embed_dim, depths=tuple(args.depths),
                             heads=tuple(args.heads), window=args.window,
                             mlp_ratio=args.mlp_ratio, levels=args.levels,
                             init_lambda=args.init_lambda, mask_ratio=args.mask_ratio,
                             mask_all=args.mask_all))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="output prefix; writes PREFIX.pt and PREFIX.train.json")
    p.add_argument("--budget-min", type=float, default=55.0, help="wall-clock training budget")
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--max-batches", type=int, default=0, help="stop after this many batches (smoke tests)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=300, help="warm-up steps")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--embed-dim", type=int, default=48)
    p.add_argument("--depths", type=int, nargs="+", default=[2, 2])
    p.add_argument("--heads", type=int, nargs="+", default=[3, 6])
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--mlp-ratio", type=float, default=2.0)
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--init-lambda", type=float, default=2.0)
    p.add_argument("--mask-ratio", type=float, default=0.0)
    p.add_argument("--mask-all", action="store_true", help="also mask MLP and projection inputs")
    p.add_argument("--init", help="start from this checkpoint (fine-tuning)")
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = data.load("train")
    test_x, test_y = data.load("test")
    if args.train_limit:
        train_x, train_y = train_x[:args.train_limit], train_y[:args.train_limit]
    if args.test_limit:
        test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]
    train_x, train_y = torch.from_numpy(data.to_network_input(train_x)), torch.from_numpy(train_y)
    test_x, test_y = torch.from_numpy(data.to_network_input(test_x)), torch.from_numpy(test_y)

    model = build_model(args)
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr)
    budget = args.budget_min * 60.0
    info = {"args": vars(args), "parameters": parameter_count(model), "epochs": []}
    print(f"config {model.cfg.to_dict()}", flush=True)
    print(f"parameters {info['parameters']}", flush=True)

    start, step, done = time.time(), 0, False
    for epoch in range(args.max_epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_y)))
        loss_sum, correct, seen, t_epoch = 0.0, 0, 0, time.time()
        for i in range(0, len(order), args.batch):
            progress = (time.time() - start) / budget
            if progress >= 1.0 or (args.max_batches and step >= args.max_batches):
                done = True
                break
            lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = order[i:i + args.batch]
            xb, yb = augment(train_x[idx], rng), train_y[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
            if step % 50 == 0:
                print(f"epoch {epoch} step {step} loss {loss_sum / seen:.4f} train_acc {correct / seen:.4f} "
                      f"lr {lr:.2e} elapsed {time.time() - start:.0f}s "
                      f"({(time.time() - t_epoch) / seen * 1000:.2f} ms/image)", flush=True)
        if seen == 0:
            break
        test_acc = evaluate(model, test_x, test_y)
        record = {"epoch": epoch, "steps": step, "images": seen, "train_loss": loss_sum / seen,
                  "train_acc": correct / seen, "test_acc": test_acc,
                  "epoch_seconds": time.time() - t_epoch, "elapsed_seconds": time.time() - start,
                  "complete": not done}
        info["epochs"].append(record)
        print("EPOCH " + json.dumps(record), flush=True)
        info["train_seconds"] = time.time() - start
        info["test_acc"] = test_acc
        save_checkpoint(args.out + ".pt", model, info)
        with open(args.out + ".train.json", "w") as f:
            json.dump(info, f, indent=1)
        if done:
            break
    print(f"finished: {time.time() - start:.0f}s, test accuracy {info.get('test_acc')}", flush=True)
    return model, info


if __name__ == "__main__":
    main()
