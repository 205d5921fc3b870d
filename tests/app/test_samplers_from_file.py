"""Results reproducible from the file they came in (core/labs/provenance.py): the Samplers page's PNG and GIF carry
their settings, and the PNG (or its JSON) loaded back through "Load settings from a file" draws the same images
bit for bit; a hostile file gets a sentence and leaves the page running."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.labs import provenance
from tests.conftest import ROOT
from tests.zoo_fixtures import write_ddim_zoo

PAGE = str(ROOT / "app_pages" / "samplers.py")


def _set(at: AppTest, **widgets) -> AppTest:
    for key, value in widgets.items():
        widget = next(
            w
            for kind in ("selectbox", "number_input", "slider", "toggle", "text_input")
            for w in at.get(kind)
            if w.key == key
        )
        widget.set_value(value).run()
    return at


def _downloads(at: AppTest, files: dict[str, bytes]) -> dict[str, bytes]:
    """The download buttons' files by key, as the browser would fetch them: from the media store's files, or, for a
    file built only when clicked (a callable), what that callable builds."""
    out = {}
    for button in at.get("download_button"):
        if button.proto.url:
            out[button.key] = files[button.proto.url.rsplit("/", 1)[-1].split(".")[0]]
        elif callable(build := files.get(button.proto.deferred_file_id)):
            data = build()
            out[button.key] = data.encode() if isinstance(data, str) else data
    return out


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def media(monkeypatch) -> dict[str, bytes]:
    """Every file the pages hand to Streamlit's media store (downloads among them), by its id; a download built
    only when clicked is kept as its callable, by its placeholder id."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id
    deferred = MediaFileManager.add_deferred

    def keeping(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        files[file_id] = self._files_by_id[file_id].content
        return file_id

    def keeping_callable(self, data_callable, *args, **kwargs):
        file_id = deferred(self, data_callable, *args, **kwargs)
        files[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keeping)
    monkeypatch.setattr(MediaFileManager, "add_deferred", keeping_callable)
    return files


@pytest.fixture
def fresh(app_env):
    return lambda: AppTest.from_file(PAGE, default_timeout=120).run()


def _generated(at: AppTest, media: dict[str, bytes]) -> dict[str, bytes]:
    at.button(key="smp-go").click().run()
    assert not at.exception and not at.error, (at.exception, at.error)
    return _downloads(at, media)


def _upload(at: AppTest, name: str, data: bytes, kind: str = "image/png") -> AppTest:
    at.file_uploader(key="smp-from-file").set_value((name, data, kind)).run()
    assert not at.exception
    return at


def test_a_png_download_loaded_into_a_fresh_page_draws_the_same_images_bit_for_bit(fresh, media):
    at = fresh()
    at.selectbox(key="smp-model").set_value("tiny-cond").run()
    _set(at, **{"smp-sampler": "euler_ancestral", "smp-steps": 4, "smp-batch": 3, "smp-seed": 11, "smp-class": 7})
    _set(at, **{"smp-guidance": "apg", "smp-cfg": 2.5, "smp-apg-eta": 0.25})
    first = _generated(at, media)
    rec = provenance.read(first["smp-png"], "samples.png")[0]  # the settings, read back from the PNG's text chunk
    assert rec["model"]["name"] == "tiny-cond" and rec["model"]["sha256"]
    assert all(len(v) == 64 for v in rec["model"]["sha256"].values())
    s = rec["settings"]
    assert (s["sampler"], s["steps"], s["seed"], s["batch"], s["class"]) == ("euler_ancestral", 4, 11, 3, 7)
    assert s["guidance"]["method"] == "apg" and s["guidance"]["scale"] == 2.5 and s["guidance"]["eta"] == 0.25
    assert rec["device"] == "cpu" and rec["dtype"] == "float32" and rec["torch"] and rec["atlas"]
    assert provenance.read(first["smp-gif"], "run.gif") == [rec]  # the GIF carries the same record
    gif = _upload(fresh(), "run.gif", first["smp-gif"], "image/gif")  # and restores the same settings
    assert gif.selectbox(key="smp-model").value == "tiny-cond" and gif.slider(key="smp-apg-eta").value == 0.25

    again = _upload(fresh(), "samples.png", first["smp-png"])
    assert again.selectbox(key="smp-model").value == "tiny-cond"
    assert again.selectbox(key="smp-sampler").value == "euler_ancestral"
    assert again.selectbox(key="smp-guidance").value == "apg" and again.slider(key="smp-apg-eta").value == 0.25
    assert any("Restored from the file" in m.value for m in again.success)
    second = _generated(again, media)
    assert np.array_equal(_pixels(second["smp-png"]), _pixels(first["smp-png"]))  # bit for bit
    assert provenance.read(second["smp-png"])[0]["settings"] == s


def test_a_typed_grid_and_a_json_record_restore_the_same_images(fresh, media):
    at = fresh()
    _set(at, **{"smp-sampler": "dpmpp_2m", "smp-spacing": "typed"})
    _set(at, **{"smp-typed": "60.123456789, 7.3, 0.9173, 0.0211", "smp-batch": 2, "smp-seed": 5})
    first = _generated(at, media)
    rec = provenance.read(first["smp-png"])[0]
    assert rec["settings"]["spacing"] == "typed" and rec["settings"]["grid"][0] == 60.123456789
    again = _upload(fresh(), "settings.json", json.dumps({"atlas": rec}).encode(), "application/json")
    assert again.selectbox(key="smp-spacing").value == "typed"
    second = _generated(again, media)
    assert np.array_equal(_pixels(second["smp-png"]), _pixels(first["smp-png"]))


def _png_with(text: bytes, keyword: bytes = b"atlas") -> bytes:
    """A 1x1 PNG carrying one tEXt chunk."""
    png = io.BytesIO()
    Image.new("L", (1, 1)).save(png, format="PNG")
    data = png.getvalue()
    body = keyword + b"\0" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return data[:33] + chunk + data[33:]


def _record(**settings) -> bytes:
    rec = {"format": provenance.FORMAT, "model": {"name": "tiny-uncond"}, "settings": {**_BASE, **settings}}
    return json.dumps(rec).encode()


_BASE = {"sampler": "euler", "steps": 3, "spacing": "trailing", "seed": 0, "batch": 2}


def _study_record() -> bytes:
    """A guidance sweep's record (a study of another page) as JSON."""
    rec = json.loads(_record())
    rec["study"] = {"page": "Guidance: what each method trades", "source": "pixel", "series": []}
    return json.dumps(rec).encode()


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.png", b"not a png at all", "not a PNG, GIF, CSV or JSON"),
        ("plain.png", _png_with(b"{}", keyword=b"Comment"), "carries no Atlas settings"),
        ("huge.png", _png_with(b"x" * 300_000), "a record is a few thousand"),
        ("type.png", _png_with(_record(steps="twenty")), "steps should be a whole number"),
        ("sampler.png", _png_with(_record(sampler="__import__('os')")), "not one of the Atlas's samplers"),
        ("pickle.json", json.dumps({"atlas": "cos\nsystem\n(S'echo hi'\ntR."}).encode(), "not in the Atlas's format"),
        ("deep.json", b"[" * 100 + b"]" * 100, "deeper than"),
        ("guide.json", _record(guidance={"method": "magic"}), "the Atlas has cfg"),
        ("study.json", _study_record(), "holds a study of another page (Guidance: what each method trades)"),
    ],
)
def test_a_hostile_file_gets_a_sentence_and_the_page_keeps_running(fresh, name, data, says):
    at = _upload(fresh(), name, data, "application/json" if name.endswith("json") else "image/png")
    assert any(says in e.value for e in at.error), [e.value for e in at.error]
    assert at.selectbox(key="smp-model").value == "tiny-uncond"  # nothing changed
    at.button(key="smp-go").click().run()
    assert not at.exception and at.subheader  # and the page still samples


def test_a_model_not_in_the_zoo_is_said_and_the_rest_restored(fresh):
    rec = json.loads(_record(sampler="heun", steps=5))
    rec["model"] = {"name": "someone/elses-model", "source": "hub:someone/elses-model", "sha256": {}}
    at = _upload(fresh(), "other.json", json.dumps(rec).encode(), "application/json")
    assert any("someone/elses-model" in w.value and "not in this zoo" in w.value for w in at.warning)
    assert at.selectbox(key="smp-sampler").value == "heun" and at.number_input(key="smp-steps").value == 5


@pytest.fixture
def ddim(app_env, monkeypatch):
    """Fresh pages over the app zoo and two pipelines whose scheduler configs diffusers' DDIMScheduler wrote."""
    monkeypatch.setenv("ATLAS_MANIFEST", str(write_ddim_zoo(app_env)))
    return lambda: AppTest.from_file(PAGE, default_timeout=120).run()


FOLDER = {  # a folder model's own controls, each away from what its config gives (ui/samplers/controls.py)
    "smp-clip-range": 2.0,
    "smp-threshold": True,
    "smp-ratio": 0.9,
    "smp-max": 1.5,
    "smp-offset": 2,
    "smp-to-zero": False,
    "smp-one-more": True,
}


def test_a_folder_models_own_controls_are_restored_and_draw_the_same_images(ddim, media):
    at = ddim()
    at.selectbox(key="smp-model").set_value("tiny-ddim-leading").run()
    _set(at, **{"smp-ddim-eta": 0.5, "smp-steps": 3, "smp-batch": 2, "smp-seed": 4}, **FOLDER)
    first = _generated(at, media)
    s = provenance.read(first["smp-png"])[0]["settings"]
    assert (s["clip_range"], s["thresholding"], s["steps_offset"], s["to_zero"], s["one_more"]) == (
        2.0,
        [0.9, 1.5],
        2,
        False,
        True,
    )

    again = _upload(ddim(), "samples.png", first["smp-png"])  # a fresh page, on another model
    assert again.selectbox(key="smp-model").value == "tiny-ddim-leading"
    shown = {w.key: w.value for kind in ("number_input", "toggle") for w in again.get(kind) if w.key in FOLDER}
    assert shown == FOLDER
    assert not again.warning  # every setting of the file has its control on this model
    second = _generated(again, media)
    assert np.array_equal(_pixels(second["smp-png"]), _pixels(first["smp-png"]))  # bit for bit
    assert provenance.read(second["smp-png"])[0]["settings"] == s


def test_a_folder_setting_out_of_its_controls_range_or_on_a_model_without_it_gets_a_sentence(ddim):
    folder = {"clip_range": 2.0, "thresholding": [0.3, 1.5], "steps_offset": 500, "to_zero": False}
    rec = json.loads(_record(sampler="ddim", spacing="leading", one_more=True, spread_classes=True, **folder))
    rec["model"] = {"name": "tiny-ddim-leading"}
    at = _upload(ddim(), "folder.json", json.dumps(rec).encode(), "application/json")
    warnings = [w.value for w in at.warning]
    assert any("thresholding quantile 0.3 is beyond this page's 0.5 to 1" in w for w in warnings), warnings
    assert any("steps_offset 500 is beyond this page's 0 to 100" in w for w in warnings), warnings
    assert any("spreads its images over the classes" in w for w in warnings), warnings
    assert at.number_input(key="smp-clip-range").value == 2.0 and at.toggle(key="smp-threshold").value
    assert not at.toggle(key="smp-to-zero").value and at.toggle(key="smp-one-more").value
    assert not at.exception

    rec["model"] = {"name": "tiny-uncond"}  # a model without a scheduler config of its own: no such controls
    at = _upload(ddim(), "zoo.json", json.dumps(rec).encode(), "application/json")
    warnings = [w.value for w in at.warning]
    for what in ("clipping to ±2", "dynamic thresholding", "steps_offset 500", "n + 1 timesteps", "ends above σ = 0"):
        assert any(what in w and "only for a model with its own scheduler config" in w for w in warnings), what
    assert at.selectbox(key="smp-sampler").value == "ddim" and not at.exception
