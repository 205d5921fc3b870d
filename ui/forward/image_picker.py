"""Choose the image the forward process runs on: a data-set sample, a photograph, or an upload."""

from __future__ import annotations

import hashlib

import streamlit as st
import torch
from PIL import Image

from core.data.images import PHOTOS, UPLOAD_SQUARE, center_square, photo, read_upload, to_tensor, uint8_to_tensor
from core.errors import AtlasError
from core.text import plain_label
from ui.common.cache import image_set, registry
from ui.common.memo import Memo


def pick_image(key: str = "fwd") -> tuple[torch.Tensor, str] | None:
    """An image tensor [C, H, W] in [-1, 1] and a caption, or None (with a message shown) if there is none."""
    source = st.radio("Image", ["Data set", "Photograph", "Upload"], horizontal=True, key=f"{key}-source")
    if source == "Data set":
        return _from_dataset(key)
    size = st.select_slider("Size (pixels)", [32, 64, 128, 256], value=64, key=f"{key}-size")
    grey = st.toggle("Grey", value=False, key=f"{key}-grey")
    if source == "Photograph":
        name = st.selectbox("Photograph", list(PHOTOS), format_func=PHOTOS.get, key=f"{key}-photo")
        return to_tensor(center_square(photo(name), size), grey), f"{PHOTOS[name]} (scikit-image), {size}x{size}"
    upload = st.file_uploader(
        "PNG, JPEG or WebP, up to 10 MB", type=["png", "jpg", "jpeg", "webp"], key=f"{key}-upload"
    )
    if upload is None:
        st.info("Upload an image to see it noised; it is cropped to a centred square and resized.")
        return None
    name = plain_label(upload.name)
    try:
        square = _decoded_once(key, upload.getvalue(), name)
    except AtlasError as e:
        st.error(str(e))
        return None
    return to_tensor(center_square(square, size), grey), f"{name}, {size}x{size}"


def _decoded_once(key: str, data: bytes, name: str) -> Image.Image:
    """The upload's centred square (at most UPLOAD_SQUARE a side), decoded once per upload in this session:
    a rerun (any widget) finds it by the bytes' hash instead of decoding up to 40 million pixels again."""

    def decode() -> Image.Image:
        img = read_upload(data, name)
        return center_square(img, _square_side(img))

    return Memo[str, Image.Image](f"{key}-upload-square").make(hashlib.sha256(data).hexdigest(), decode)


def _square_side(img: Image.Image) -> int:
    return max(8, min(UPLOAD_SQUARE, *img.size))


def _from_dataset(key: str) -> tuple[torch.Tensor, str] | None:
    datasets = registry().datasets
    name = st.selectbox("Data set", list(datasets), format_func=lambda n: datasets[n].title, key=f"{key}-ds")
    try:
        ds = image_set(name, "test")
    except AtlasError as e:
        st.error(str(e))
        return None
    label = st.selectbox("Class", range(len(ds.classes)), format_func=lambda i: ds.classes[i], key=f"{key}-class")
    indices = ds.of_class(label)
    if len(indices) == 0:
        st.warning("No image of that class in this split.")
        return None
    k = st.slider("Which one", 0, len(indices) - 1, 0, key=f"{key}-index-{name}-{label}")
    st.caption(f"Source: {ds.source}.")
    image = uint8_to_tensor(ds.images[indices[k]])
    return image, f"{datasets[name].title} #{int(indices[k])} ({ds.classes[label]})"
