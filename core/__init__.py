"""Everything below the pages that knows nothing of Streamlit or the zoo: the diffusion engine (diffusion/), the
networks (models/), their training (training/) and runs (runs/), data sets (data/), metrics (metrics/) and the
logic behind each page (labs/). Nothing here imports streamlit, zoo or ui.

Importing core sets OMP_WAIT_POLICY=PASSIVE unless it is set: OpenMP reads it once, when torch is first imported,
and the app, `python -m zoo` and the benches import core before torch (the threads policy: core/device.py). It
also caps glibc's malloc heaps at two (core/memory.tune_heap), before the server starts a thread per rerun."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from core.memory import tune_heap  # after the line above (core.memory does not import torch)

tune_heap()
