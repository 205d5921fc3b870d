"""Compare checkpoints: 2-4 models from the same noise side by side, one run's checkpoints over training, or one
checkpoint at post-hoc EMA lengths."""

import streamlit as st

from ui.common.runs import OPEN_OVER_TRAINING
from ui.compare_checkpoints import ema_length, from_file, over_training, views

st.title("Compare checkpoints")
opened = "Over training" if st.session_state.pop(OPEN_OVER_TRAINING, False) else None
side, over, lengths = st.tabs(["Side by side", "Over training", "Over EMA length"], default=opened)
with side:
    from_file.load_settings_box()  # a grid or table it exported puts its checkpoints and settings back
    views.side_by_side()
with over:
    over_training.tab()
with lengths:
    ema_length.tab()
