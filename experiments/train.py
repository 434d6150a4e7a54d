"""Train the Fashion-MNIST models on CPU: seeded, resumable, with a checkpoint every epoch.

    python -m experiments.train resnet20_fmnist --epochs 15 --out runs/resnet20_fmnist
    flexiq train resnet20_fmnist --epochs 15

``OUT/state.pt`` holds everything needed to resume (model, optimizer, scheduler, RNG states,
history) and is replaced atomically after every epoch; ``OUT/<name>.pt`` is the final float32
state dict and ``OUT/result.json`` the metrics. Shuffling and augmentation draw from a generator
seeded by ``(seed, epoch)``, so a resumed run repeats the epochs an uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

SUBSET = 2000  # the fixed test subset the shipped-checkpoint test re-evaluates


@dataclass(frozen=True)
class Recipe:
    epochs: int
    optimizer: str  # "sgd" (Nesterov momentum 0.9) or "adamw"
    lr: float  # peak learning rate of the one-cycle schedule
    weight_decay: float
    batch_size: int = 128
    warmup: float = 0.15  # fraction of steps spent warming up
    label_smoothing: float = 0.0
    crop_pad: int = 2  # random-crop padding in pixels (0: off)
    flip: bool = True  # random horizontal flip


RECIPES = {
    "resnet20_fmnist": Recipe(epochs=15, optimizer="sgd", lr=0.2, weight_decay=5e-4),
    "mobilenet_v2_fmnist": Recipe(epochs=10, optimizer="sgd", lr=0.1, weight_decay=1e-4),
    "vit_tiny_fmnist": Recipe(
        epochs=30, optimizer="adamw", lr=2e-3, weight_decay=0.05, label_smoothing=0.1
    ),
}


def _atomic_save(obj, path: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _augment(images: np.ndarray, rng: np.random.Generator, recipe: Recipe) -> np.ndarray:
    """Random crop with zero padding and random horizontal flip, on uint8 [B, 28, 28]."""
    out = images
    if recipe.crop_pad:
        p = recipe.crop_pad
        h, w = images.shape[1:]
        padded = np.pad(images, ((0, 0), (p, p), (p, p)))
        offs = rng.integers(0, 2 * p + 1, size=(len(images), 2))
        out = np.stack([padded[i, dy: dy + h, dx: dx + w] for i, (dy, dx) in enumerate(offs)])
    if recipe.flip:
        flip = rng.random(len(images)) < 0.5
        out = np.where(flip[:, None, None], out[:, :, ::-1], out)
    return out


def _make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # no weight decay on norms, biases and the transformer's token/position embeddings
        (no_decay if p.ndim <= 1 or name.endswith(("cls_token", "pos_embed")) else decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9, nesterov=True)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, 0.999))
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def evaluate(model: torch.nn.Module, split: str = "test", limit: int | None = None,
             batch_size: int = 500) -> float:
    """Top-1 accuracy (fraction) of a Fashion-MNIST model on the first ``limit`` images of ``split``."""
    from models.datasets import fashion_mnist_loader

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in fashion_mnist_loader(split, batch_size, limit=limit):
            x = x.contiguous(memory_format=torch.channels_last)
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def train(
    name: str,
    epochs: int | None = None,
    seed: int = 0,
    out: str | None = None,
    resume: bool = True,
    *,
    threads: int | None = None,
    limit: int | None = None,
    eval_limit: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    **overrides,
) -> dict:
    """Train registry model ``name`` on the Fashion-MNIST training split; returns the metrics.

    ``overrides`` replace fields of the model's ``Recipe`` (e.g. ``lr=0.05``); ``limit`` trains
    on the first ``limit`` training images only and ``eval_limit`` monitors on the first
    ``eval_limit`` test images (smoke tests). ``stop_after`` ends this call after that many
    epochs (the run resumes later); the result then has ``"finished": False``.
    """
    import models
    from models.datasets import load_fashion_mnist, normalize_images
    from quant.errors import FlexiQError

    if name not in RECIPES:
        raise FlexiQError(f"no training recipe for {name!r}; trainable: {', '.join(RECIPES)}")
    recipe = replace(RECIPES[name], **overrides)
    if epochs is not None:
        recipe = replace(recipe, epochs=int(epochs))
    out = out or os.path.join("runs", name)
    os.makedirs(out, exist_ok=True)
    state_path = os.path.join(out, "state.pt")
    if threads:
        torch.set_num_threads(int(threads))

    torch.manual_seed(seed)
    random.seed(seed)
    model = models.build(name).to(memory_format=torch.channels_last)
    images, labels = load_fashion_mnist("train")
    if limit:
        images, labels = images[:limit], labels[:limit]
    steps_per_epoch = (len(images) + recipe.batch_size - 1) // recipe.batch_size
    optimizer = _make_optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=recipe.warmup, anneal_strategy="cos", div_factor=25.0, final_div_factor=1e3,
    )
    start_epoch, history, wall = 0, [], 0.0
    if resume and os.path.isfile(state_path):
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        same = (state["name"], state["recipe"], state["seed"], state.get("limit")) == (
            name, asdict(recipe), seed, limit)
        if not same:
            raise FlexiQError(
                f"{state_path} was written by a different run (model/recipe/seed/limit differ); "
                "pass another --out or --no-resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, history, wall = state["epoch"] + 1, state["history"], state["wall_s"]
        print(f"[train] resuming {name} after epoch {start_epoch}/{recipe.epochs}")

    last = recipe.epochs if stop_after is None else min(recipe.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, last):
        t0 = time.time()
        model.train()
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(images))
        loss_sum = seen = 0
        bar = tqdm(range(steps_per_epoch), desc=f"{name} {epoch + 1}/{recipe.epochs}",
                   disable=not progress, leave=False, mininterval=5.0)
        for step in bar:
            idx = order[step * recipe.batch_size: (step + 1) * recipe.batch_size]
            x = normalize_images(_augment(images[idx], rng, recipe))
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels[idx].astype(np.int64))
            loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        acc = evaluate(model, limit=eval_limit)  # monitoring only: the last epoch is shipped
        wall += time.time() - t0
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "test_acc": acc,
                        "wall_s": round(wall, 1)})
        print(f"[train] {name} epoch {epoch + 1}/{recipe.epochs} loss {loss_sum / seen:.4f} "
              f"test acc {acc:.4f} ({wall / 60:.1f} min)", flush=True)
        _atomic_save({"name": name, "recipe": asdict(recipe), "seed": seed, "limit": limit,
                      "epoch": epoch,
                      "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "rng": _rng_state(),
                      "history": history, "wall_s": wall}, state_path)
    if last < recipe.epochs:
        return {"name": name, "finished": False, "epochs_done": last, "history": history}

    subset = SUBSET if eval_limit is None else min(SUBSET, eval_limit)
    final = {k: v.detach().float().contiguous() if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    weights_path = os.path.join(out, f"{name}.pt")
    _atomic_save(final, weights_path)
    model.eval()
    result = {
        "name": name, "finished": True, "seed": seed, "epochs": recipe.epochs,
        "recipe": asdict(recipe),
        "params": sum(p.numel() for p in model.parameters()),
        "test_acc": history[-1]["test_acc"], "test_images": eval_limit or 10000,
        "subset_acc": evaluate(model, limit=subset), "subset": f"test[:{subset}]",
        "wall_s": round(wall, 1), "threads": torch.get_num_threads(),
        "weights": weights_path, "history": history,
    }
    from experiments import io

    io.write_json(os.path.join(out, "result.json"), result)
    return result


def main(argv: list[str] | None = None) -> int:
    from experiments.commands.train import add_arguments

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args) -> int:
    result = train(args.name, args.epochs, args.seed, args.out, args.resume, threads=args.threads,
                   stop_after=args.stop_after)
    if not result["finished"]:
        print(f"[train] {args.name}: stopped after epoch {result['epochs_done']}; run again to resume")
        return 0
    print(f"[train] {args.name}: test acc {result['test_acc']:.4f}, "
          f"first-2000 acc {result['subset_acc']:.4f}, weights {result['weights']}")
    if args.ship:
        from models.cards import ship

        path = ship(result, command=_reproduce_command(args))
        print(f"[train] shipped to {path}")
    return 0


def _reproduce_command(args) -> str:
    cmd = f"flexiq train {args.name} --seed {args.seed}"
    if args.epochs is not None:
        cmd += f" --epochs {args.epochs}"
    if args.threads:
        cmd += f" --threads {args.threads}"
    return cmd + " --ship"


if __name__ == "__main__":
    raise SystemExit(main())
