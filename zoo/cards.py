"""Model cards (README.md) for bundled models: data, recipe, hardware, training time, metrics, samples.

The card starts with YAML front matter, as Hugging Face model cards do; the numbers that tests check
(e.g. held_out_accuracy) are plain `key: value` lines there, so `card_fields` can read them back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from zoo.registry import ModelEntry

RECIPE_KEYS = ("train", "schedule", "model", "steps", "cond_dropout", "teacher", "distill", "sampler")
FREE_TEXT = ("notes", "rows_note")  # prose under the metrics, kept out of the front matter
METRIC_TEXT = {  # what each scalar metric means, for the card's Metrics section
    "held_out_accuracy": "accuracy on the held-out digits",
    "held_out_classifier_accuracy": "the metric network's (mnist-lenet) accuracy on the held-out digits",
    "guided_accuracy_scale3": "samples read by mnist-lenet as the class asked for (guidance 3, dpmpp_2m 20 steps)",
    "guided_accuracy_scale3_decoded": "decoded samples read by mnist-lenet as the class asked for (guidance 3, "
    "dpmpp_2m 20 steps)",
    "held_out_reconstruction": "held-out digits: reconstruction term -log p(x|z), nats per digit (Bernoulli)",
    "held_out_kl": "held-out digits: KL(q(z|x) || N(0, I)), nats per digit",
    "latent_10nn_accuracy": "held-out digits' classes read from their 10 nearest training digits in the latent plane",
}


def _run_config(entry: ModelEntry) -> dict[str, Any]:
    path = Path(entry.run or "") / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def card_fields(card: Path) -> dict[str, str]:
    """The `key: value` lines of a card's front matter."""
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    head = text[4 : text.index("\n---", 4)]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()) if v}


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_not measured yet: run `python -m bench.zoo_quality --write-cards`_\n"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(r.get(h, "")) for h in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _metrics(quality: dict[str, Any]) -> list[str]:
    scalars = [f"- {text}: **{quality[key]}**" for key, text in METRIC_TEXT.items() if key in quality]
    if not scalars and not quality.get("rows"):
        return [_table([])]
    lines = [*scalars, ""] if scalars else []
    if quality.get("rows"):
        lines += [quality.get("rows_note", ""), "", _table(quality["rows"])]
    return lines + [quality[k] + "\n" for k in ("notes",) if quality.get(k)]


def write_card(entry: ModelEntry, quality: dict[str, Any] | None = None) -> Path:
    """Write entry.path/README.md (and samples.png from the run's last sample grid); returns the card path."""
    folder = Path(entry.path or "")
    run = _run_config(entry)
    grids = sorted((Path(entry.run or "") / "samples").glob("step_*.png"))
    if grids:
        shutil.copyfile(grids[-1], folder / "samples.png")
    quality = quality or {}
    hw = run.get("hardware", {})
    front = {
        "library_name": "diffusion-atlas",
        "license": "apache-2.0",
        "tags": "diffusion, mnist, " + entry.family,
        "datasets": "ylecun/mnist",
        "parameters": quality.get("parameters", ""),
        "train_wall_seconds": run.get("wall_seconds", ""),
        **{k: v for k, v in quality.items() if not isinstance(v, list | dict) and k not in FREE_TEXT},
    }
    lines = ["---", *(f"{k}: {v}" for k, v in front.items() if v != ""), "---", ""]
    lines += [f"# {entry.title}", "", entry.description, ""]
    lines += [
        "## Data",
        "",
        f"{run.get('data', 'MNIST')}; {run.get('train_images', '?')} training images. The held-out digits",
        "used for the metrics below are never trained on.",
        "",
        "## Recipe",
        "",
        f"`python -m zoo train {run.get('recipe', entry.name)}` reproduces this folder (`zoo/recipes/"
        f"{run.get('recipe', entry.name)}.toml`). Settings as run:",
        "",
        "```json",
        json.dumps({k: run[k] for k in RECIPE_KEYS if k in run}, indent=2),
        "```",
        "",
        "## Hardware and time",
        "",
        f"{hw.get('device_name', '?')} ({hw.get('device', '?')}, torch {hw.get('torch', '?')}, "
        f"{hw.get('threads', '?')} threads); {float(run.get('wall_seconds', 0)) / 60:.1f} minutes of training; "
        f"code version {run.get('code_version', '?')}.",
        "",
        "## Metrics",
        "",
        *_metrics(quality),
    ]
    if grids:
        lines += ["## Samples", "", f"![samples at step {grids[-1].stem[5:].lstrip('0')}](samples.png)", ""]
    card = folder / "README.md"
    card.write_text("\n".join(lines), encoding="utf-8")
    return card
