"""User-given text that the app shows back (file names, column names, typed ids and paths, cells).

Such text reaches chart titles, captions, tables and error sentences, where markdown and Plotly's HTML subset
interpret it and where a megabyte of it costs the server and the browser minutes. So it is shown only as a
plain label: one line, letters, digits, spaces and plain punctuation (other characters become '?'), cut to a
few dozen characters with '…'. Nothing is lost: the label is for reading, the data keep their own values.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[^\w .,:;!?'+\-=/()@#%&]")  # \w is Unicode-aware: letters and digits of any script
MAX_LABEL = 40


def plain_label(text: object, limit: int = MAX_LABEL) -> str:
    """`text` as a short, inert label (see the module's docstring); '?' for an empty one."""
    raw = str(text)[: limit + 1]  # never look further than needed, however long the text is
    label = _PLAIN.sub("?", " ".join(raw.split()))
    if len(label) > limit or len(str(text)) > limit:
        label = label[: limit - 1].rstrip() + "…"
    return label or "?"
