"""Model cards of the shipped Fashion-MNIST checkpoints: ``checkpoints/cards.json`` (read by the
tests) and the human-readable ``checkpoints/MODEL_CARD.md`` rendered from it.
"""

from __future__ import annotations

import json
import os
import shutil

from .weights import CHECKPOINT_DIR

CARDS_JSON = os.path.join(CHECKPOINT_DIR, "cards.json")
CARD_MD = os.path.join(CHECKPOINT_DIR, "MODEL_CARD.md")
ARCHITECTURES = {
    "resnet20_fmnist": "ResNet-20 (CIFAR-style, 16/32/64 channels, 1x1-conv shortcuts)",
    "mobilenet_v2_fmnist": "MobileNetV2-small (stride-1 stem, 10 inverted residuals, 512-wide head)",
    "vit_tiny_fmnist": "ViT-tiny (4x4 patches, 6 layers, dim 128, 4 heads, MLP 256)",
}

# issue 3 targets, top-1 on the 10k test images
TARGETS = {"resnet20_fmnist": 0.93, "mobilenet_v2_fmnist": 0.92, "vit_tiny_fmnist": 0.89}


def load_cards(path: str | None = None) -> dict:
    path = path or CARDS_JSON
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def ship(result: dict, command: str) -> str:
    """Copy a finished run's weights into ``checkpoints/`` and record its card; returns the path."""
    name = result["name"]
    os.makedirs(CHECKPOINT_DIR, exist_ok=True)
    dest = os.path.join(CHECKPOINT_DIR, f"{name}.pt")
    shutil.copyfile(result["weights"], dest + ".tmp")
    os.replace(dest + ".tmp", dest)
    cards = load_cards(CARDS_JSON)
    cards[name] = {
        "architecture": ARCHITECTURES.get(name, name), "params": result["params"],
        "epochs": result["epochs"], "seed": result["seed"],
        "test_acc": round(result["test_acc"], 4), "subset": result["subset"],
        "subset_acc": round(result["subset_acc"], 4), "train_wall_min": round(result["wall_s"] / 60, 1),
        "threads": result["threads"], "recipe": result["recipe"], "command": command,
    }
    with open(CARDS_JSON + ".tmp", "w") as f:
        json.dump(dict(sorted(cards.items())), f, indent=2)
        f.write("\n")
    os.replace(CARDS_JSON + ".tmp", CARDS_JSON)
    write_markdown(cards)
    return dest


def write_markdown(cards: dict, path: str | None = None) -> None:
    path = path or CARD_MD
    lines = [
        "# Shipped Fashion-MNIST checkpoints",
        "",
        "Trained on CPU on the 60k Fashion-MNIST training images only; accuracy is top-1 on the",
        "10k test images (input normalized with mean 0.2860, std 0.3530). The state dicts are",
        "float32 and load with `models.get(NAME)`. `tests/models/test_checkpoints.py` re-checks",
        "the accuracy on the first 2000 test images against `cards.json`.",
        "",
        "| model | architecture | params | epochs | seed | test acc (10k) | target "
        "| acc test[:2000] | train time | reproduce |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    below = []
    for name, c in sorted(cards.items()):
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            met = c["test_acc"] >= target
            verdict = f">= {100 * target:.0f} % ({'met' if met else 'NOT met'})"
            if not met:
                below.append(name)
        lines.append(
            f"| `{name}` | {c['architecture']} | {c['params']:,} | {c['epochs']} | {c['seed']} "
            f"| {100 * c['test_acc']:.2f} % | {verdict} | {100 * c['subset_acc']:.2f} % "
            f"| {c['train_wall_min']} min ({c['threads']} thread) | `{c['command']}` |"
        )
    for name in sorted(set(ARCHITECTURES) - set(cards)):
        lines.append(f"| `{name}` | {ARCHITECTURES[name]} | | | | not shipped yet | | | "
                     f"| `flexiq train {name} --ship` |")
    if below:
        lines += ["", f"Below target: {', '.join(f'`{n}`' for n in below)}. These were trained with "
                  "fewer epochs than their recipe's default (the shared 2-core CPU did not allow the "
                  "full schedule); `flexiq train NAME --ship` without `--epochs` runs the full recipe."]
    lines += ["", "Recipes (optimizer, one-cycle peak LR, weight decay, augmentation):", ""]
    for name, c in sorted(cards.items()):
        r = c["recipe"]
        lines.append(
            f"- `{name}`: {r['optimizer']}, lr {r['lr']}, wd {r['weight_decay']}, batch "
            f"{r['batch_size']}, warmup {r['warmup']:.0%}, label smoothing {r['label_smoothing']}, "
            f"random crop pad {r['crop_pad']}, flip {r['flip']}"
        )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
