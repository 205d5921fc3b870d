"""`forget_others` (ui/common/memo.py): a page that keeps a memo per item keeps only the items it names."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def test_forget_others_drops_the_other_items_of_one_prefix_and_nothing_else():
    def script() -> None:
        import streamlit as st

        from ui.common.memo import Memo, forget_others

        for name in ("ck-result-a", "ck-result-ab", "ck-result-b", "ck-quality-b", "ot-result-b"):
            Memo(name).put(1, name)
        st.session_state["ck-result-widget"] = "a widget's value"
        forget_others("ck-result-", ["a", "c"])  # "c" has nothing kept: nothing to keep, nothing wrong
        st.text(repr(sorted(k for k in st.session_state if str(k).startswith("memo:"))))
        st.text(repr(st.session_state["ck-result-widget"]))

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [t.value for t in at.text] == [
        "['memo:ck-quality-b', 'memo:ck-result-a', 'memo:ot-result-b']",
        '"a widget\'s value"',
    ]
