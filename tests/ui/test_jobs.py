"""A long job's tally (ui/common/jobs.py): what a run stopped by a newer one can still keep, and the sentences."""

from __future__ import annotations

import threading
from functools import partial

from streamlit.testing.v1 import AppTest

from ui.common.jobs import Tally


def test_a_job_thread_that_goes_on_after_the_page_has_shown_it_keeps_nothing_more():
    tally, rows = Tally(planned=16), []
    two_done, shown = threading.Event(), threading.Event()
    kept_after: list[bool] = []

    def stopped_run() -> None:  # the old run's thread, as Streamlit's fast rerun leaves it going
        for k in range(2):
            assert tally.add(partial(rows.append, k))
        two_done.set()
        shown.wait()
        kept_after.append(tally.add(partial(rows.append, 2)))  # its third measurement, finished too late
        kept_after.append(tally.keep(partial(rows.append, "late")))

    worker = threading.Thread(target=stopped_run)
    worker.start()
    two_done.wait()
    tally.close()  # the new run shows the job
    said = tally.stopped("measurements", "any measurement was made", "run it again")
    shown.set()
    worker.join()
    assert kept_after == [False, False] and rows == [0, 1] and tally.done == 2
    assert said == tally.stopped("measurements", "any measurement was made", "run it again")
    assert said == "Stopped after 2 of 16 measurements; run it again."


def test_the_sentences_for_none_some_and_all_done():
    tally = Tally(planned=3)
    assert tally.stopped("checkpoints", "any checkpoint was measured", "press Measure") == (
        "Stopped before any checkpoint was measured; press Measure."
    )
    tally.add()
    assert tally.stopped("checkpoints", "x", "press Measure") == "Stopped after 1 of 3 checkpoints; press Measure."
    tally.add()
    tally.add()
    assert tally.stopped("checkpoints", "x", "y") is None


def test_a_new_job_closes_the_one_it_replaces_and_showing_a_record_closes_it():
    def script() -> None:
        import streamlit as st

        from ui.common import jobs
        from ui.common.memo import Memo

        memo = Memo[str, jobs.Kept[list]]("test-job")
        first = jobs.start(memo, "a", jobs.Kept(jobs.Tally(planned=2), []))
        second = jobs.start(memo, "b", jobs.Kept(jobs.Tally(planned=2), []))
        st.text(repr((first.tally.open, second.tally.open)))
        key, found = jobs.shown(memo)
        st.text(repr((key, found is second, second.tally.open)))

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [t.value for t in at.text] == ["(False, True)", "('b', True, False)"]
