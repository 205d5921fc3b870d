"""Zoo load times: cold (first) load vs cached loads, for a bundled-style folder and a Hub model.

    python -m bench.zoo

The Hub model is served by a real HTTP server on 127.0.0.1 in the Hub's layout (tests/hub_server.py),
with the Diffusion Everything CIFAR-10 architecture (random weights, same size as the real checkpoint).
"cached" is a second `load_model` call (files from the Hugging Face cache, no request); "resource cache"
is the app's `st.cache_resource` hit, which returns the already built model.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import print_table
from core.models.unet import unet_config
from tests.hub_server import FakeHub
from zoo.errors import NeedsConnectionError
from zoo.hub import forget_probes
from zoo.loaders import load_model
from zoo.manifest import manifest_text
from zoo.registry import load_registry


def _manifest(folder: Path, de_config: dict) -> Path:
    """A bundled-style UNet and a Hub state dict of the Diffusion Everything architecture (`de_config`)."""
    pixel = {"family": "pixel", "prediction_type": "epsilon", "schedule": {"kind": "linear"}}
    bundled = {
        "name": "bundled-unet",
        "title": "Bundled-style UNet",
        "format": "diffusers-unet",
        "path": "bundled/unet",
        "sample_shape": [1, 28, 28],
        **pixel,
    }
    hub = {
        "name": "hub-unet",
        "title": "Hub UNet (Diffusion Everything size)",
        "format": "state-dict",
        "repo": "bench/diffusion-everything",
        "files": ["ddpm-linear.pth"],
        "state_dict_key": "model",
        "architecture": "unet2d",
        "sample_shape": [3, 32, 32],
        "num_classes": 10,
        **pixel,
        "config": de_config,
    }
    path = folder / "models.toml"
    path.write_text(manifest_text(models=[bundled, hub]), encoding="utf-8")
    return path


def main() -> None:
    from diffusers import UNet2DModel

    from ui.common import cache

    registry_entry = load_registry(Path("zoo/models.toml")).model("diffusion-everything-cifar10")
    de_config = dict(registry_entry.config)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        UNet2DModel(**unet_config()).half().save_pretrained(tmp / "bundled" / "unet", safe_serialization=True)
        buf = io.BytesIO()
        torch.save({"model": UNet2DModel(**de_config).state_dict()}, buf)
        hub = FakeHub().start()
        hub.add("bench/diffusion-everything", "ddpm-linear.pth", buf.getvalue())
        os.environ.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp / "hf"), ATLAS_MANIFEST=str(_manifest(tmp, de_config)))
        os.environ.pop("HF_HUB_OFFLINE", None)
        forget_probes()
        reg = load_registry(Path(os.environ["ATLAS_MANIFEST"]))
        rows = []
        for name in ("bundled-unet", "hub-unet"):
            entry = reg.model(name)
            before = hub.count(contains="/resolve/")
            start = time.perf_counter()
            loaded = load_model(entry)
            cold = time.perf_counter() - start
            cold_requests = hub.count(contains="/resolve/") - before
            warm = statistics.median(
                [(lambda s: (load_model(entry), time.perf_counter() - s)[1])(time.perf_counter()) for _ in range(3)]
            )
            warm_requests = hub.count(contains="/resolve/") - before - cold_requests
            cache.zoo_model(name, "cpu")
            start = time.perf_counter()
            for _ in range(100):
                cache.zoo_model(name, "cpu")
            resource = (time.perf_counter() - start) / 100
            rows.append(
                [
                    name,
                    entry.source,
                    f"{loaded.file_bytes / 1e6:.1f}",
                    f"{loaded.param_count / 1e6:.2f}M",
                    cold,
                    cold_requests,
                    warm,
                    warm_requests,
                    f"{resource * 1e6:.0f} us",
                ]
            )
        hub.stop()
        fail_rows = []
        for label, env in (
            ("HF_HUB_OFFLINE=1", {"HF_HUB_OFFLINE": "1"}),
            ("endpoint refuses connections", {"HF_ENDPOINT": "http://127.0.0.1:9"}),
        ):
            os.environ.update(env, HF_HOME=str(tmp / f"hf-{len(fail_rows)}"))
            forget_probes()
            start = time.perf_counter()
            try:
                load_model(reg.model("hub-unet"))
                outcome = "loaded (unexpected)"
            except NeedsConnectionError as e:
                outcome = str(e)[:70] + "..."
            fail_rows.append([label, time.perf_counter() - start, outcome])
            os.environ.pop("HF_HUB_OFFLINE", None)
    print_table(
        "Zoo load times (CPU)",
        ["model", "source", "MB", "params", "cold s", "requests", "cached s", "requests", "resource cache"],
        rows,
    )
    print_table("Uncached Hub model without a connection", ["situation", "seconds to fail", "message"], fail_rows)


if __name__ == "__main__":
    main()
