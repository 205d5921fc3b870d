"""`python -m zoo compare --from FILE`: a comparison rerun from its own grid.png or results.json draws the same
images bit for bit, and every file it writes carries each checkpoint's record (core/labs/provenance.py)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from PIL import Image

from core.labs import provenance
from zoo.__main__ import main as zoo_cli


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())))


def test_compare_reruns_from_its_png_and_its_json_with_equal_images(app_env, tmp_path, capsys):
    manifest = ["--manifest", str(app_env)]
    first = tmp_path / "first"
    args = ["compare", "tiny-uncond", "tiny-cond", "--sampler", "heun", "--steps", "3", "--images", "3"]
    assert zoo_cli([*manifest, *args, "--seed", "4", "--class", "6", "--out", str(first)]) == 0
    png = provenance.read((first / "grid.png").read_bytes())
    assert png == provenance.read((first / "results.json").read_bytes())
    assert png == provenance.read((first / "results.csv").read_bytes())
    assert [r["model"]["spec"] for r in png] == ["tiny-uncond", "tiny-cond"]
    assert [r["settings"]["class"] for r in png] == [None, 6] and {r["settings"]["seed"] for r in png} == {4}
    assert all(r["settings"]["sampler"] == "heun" and r["model"]["sha256"] for r in png)
    table = pd.read_csv(first / "results.csv", comment="#")  # the comment line leaves the table readable
    assert list(table["checkpoint"]) == ["tiny-uncond", "tiny-cond"]

    for source in ("grid.png", "results.json"):
        again = tmp_path / f"again-{source}"
        assert zoo_cli([*manifest, "compare", "--from", str(first / source), "--out", str(again)]) == 0
        assert np.array_equal(_pixels(again / "grid.png"), _pixels(first / "grid.png"))  # bit for bit
        rerun = json.loads((again / "results.json").read_text())
        assert [r["settings"] for r in rerun["atlas"]] == [r["settings"] for r in png]
    assert "from " in capsys.readouterr().out


def test_compare_from_a_hostile_or_foreign_file_says_why(app_env, tmp_path, capsys):
    manifest = ["--manifest", str(app_env)]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert zoo_cli([*manifest, "compare", "--from", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "carries no Atlas settings" in capsys.readouterr().err
    rec = {"format": provenance.FORMAT, "model": {"name": "no-such-model"}, "settings": {"sampler": "euler"}}
    foreign = tmp_path / "foreign.json"
    for settings, says in (
        ({"sampler": "euler", "steps": 3, "spacing": "trailing", "seed": 0, "batch": 2}, "not a zoo model"),
        ({"sampler": "os.system", "steps": 3}, "not one of the Atlas's samplers"),
        ({"sampler": "euler", "steps": [3], "spacing": "trailing"}, "steps should be a whole number"),
    ):
        foreign.write_text(json.dumps({**rec, "settings": settings}))
        assert zoo_cli([*manifest, "compare", "--from", str(foreign), "--out", str(tmp_path / "o")]) == 2
        assert says in capsys.readouterr().err
    assert zoo_cli([*manifest, "compare", "--from", str(tmp_path / "missing.png")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
