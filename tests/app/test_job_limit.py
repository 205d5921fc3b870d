"""The server's limit per job (ATLAS_MAX_JOB_SECONDS) holds while a job runs, not only in its estimate: a job whose
estimate was too low (a busy server, a model slower than it looked) stops at the limit, keeps what it finished
and says so; every page action runs as one job (ui/common/widgets.attempt)."""

from __future__ import annotations

from core.training import budget
from tests.app.helpers import open_page


def test_a_training_past_the_limit_stops_there_keeps_its_steps_and_says_so(monkeypatch):
    monkeypatch.setenv("ATLAS_MAX_JOB_SECONDS", "1")
    monkeypatch.setattr(budget, "estimate_seconds", lambda *args: 0.1)  # an estimate far too low
    at = open_page("toy", monkeypatch)
    at.number_input(key="toy-steps").set_value(20_000).run()
    at.button(key="toy-train").click().run()
    assert not at.exception and not at.error
    # (section 6's estimate, which has its own timing, says its default would not fit 1 s: a warning of its own)
    warnings = [w.value for w in at.warning if "limit of 1 s per job" in w.value and "was stopped" in w.value]
    assert len(warnings) == 1 and "what it finished is kept" in warnings[0]
    kept = [c.value for c in at.caption if "(stopped before 20,000)" in c.value]
    assert len(kept) == 1  # the model trained up to the limit is the one in use


def test_outside_a_page_action_no_limit_applies():
    budget.check_deadline()  # the CLI and benches run whole: nothing is armed outside a job
    with budget.limited(budget.Deadline(limit=0.0)) as deadline:
        assert budget.current_deadline() is deadline
    assert budget.current_deadline() is None
