"""Compare checkpoints: 2-4 models from the same noise side by side, or one run's checkpoints over training."""

import streamlit as st

from ui.common.runs import OPEN_OVER_TRAINING
from ui.compare_checkpoints import over_training, views

st.title("Compare checkpoints")
opened = "Over training" if st.session_state.pop(OPEN_OVER_TRAINING, False) else None
side, over = st.tabs(["Side by side", "Over training"], default=opened)
with side:
    views.side_by_side()
with over:
    over_training.tab()
