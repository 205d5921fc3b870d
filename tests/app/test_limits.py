"""Every page with its controls pushed to their limits, all at once: every slider, number box and select
slider at its lowest (range sliders spanning their whole range) with the main buttons pressed, then at its
highest; then the controls whose range follows another control's value (found as those whose range differs
between the two pushes: sampling steps at most T, ...) left at one end while the rest go to the other; then,
from the lowest, each control alone at its highest (which finds a range that should follow another control
but does not); then every range slider with both ends on one value, at each end. The page must answer with
sentences, never an exception. A push that changes no widget's value does not rerun the page (that run would
repeat the last one's settings)."""

from __future__ import annotations

import contextlib

import pytest
from streamlit.proto.Slider_pb2 import Slider as SliderProto
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

PAGES = [
    "home",
    "forward",
    "samplers",
    "ground_truth",
    "inversion",
    "inversion:Latent MNIST plane",
    "inversion:MNIST digits",
    "guidance",
    "toy",
    "latent",
    "training_logs",
    "compare_checkpoints",
]
VIEWS = {"inversion": "inv-view"}  # page:view ids choose a view in the page's segmented control
# The buttons that start each page's main work (pressed at the lowest settings, where the work is smallest). Not
# the Ground truth page's latent Compute (gt-latent-go, 6-7 s): its tab has no control, so its one setting is
# the one tests/app/test_ground_truth.py presses (and checks the numbers of).
MAIN_BUTTONS = {
    "samplers": ["smp-go", "cmp-go"],
    "ground_truth": ["gt-acc-go", "gt-model-go", "gt-like-go", "gt-memo-go", "gt-study-go"],
    "toy": ["toy-train", "toy-sample", "toy-obj-go", "toy-reflow-go"],
    "latent": ["vae-train", "ldm-train", "ldm-generate"],
    "compare_checkpoints": ["ck-go", "ck-measure"],
    "inversion:MNIST digits": ["inv-px-measure"],
    "guidance": ["gd-go"],
}
# Pages (and views) on the bundled models, not the test zoo. The inversion page's digits view runs on the test
# zoo's tiny class-conditional UNet: the same 28x28 digits, controls and limits (200 steps, 16 frames, the guidance
# scale, the class swap) at a third of mnist-cond-cfg's cost an evaluation (the case took 40 s on it, 21 s here;
# at 200 steps the view's round trip, interpolation and class swap evaluate the network about 1,000 times).
BUNDLED = ("latent", "ground_truth", "inversion", "inversion:Latent MNIST plane", "guidance")
# Choices made before the pushes: radios and toggles that bring out more controls, the digits view's class-conditional
# model, and the memorisation study's smallest training-set size (a multiselect, which no push sets; its
# sliders are pushed as usual).
CHOICES = {
    "samplers": {"smp-sampler": "ddpm", "smp-quiet": True},  # brings out the last noisy step (at most the steps)
    "latent": {"latent-vae-source": "trained"},
    "inversion:MNIST digits": {"inv-px-model": "tiny-cond"},
    "ground_truth": {"gt-study-sizes": [16]},
}


# The controls whose range follows another control on each page that has them, as the pushes must find them.
DEPENDENT = {"forward": {"fwd-t", "fwd-grid-steps"}, "samplers": {"smp-quiet-step"}}
# Pages that say in a sentence when a control's value moved into its new range (ui/common/widgets.follow_range).
SAYS_WHEN_MOVED = {"forward", "samplers"}


def _end(widget, high: bool):
    """The widget's lowest or highest value, or None when it has no bound there."""
    if widget.type == "slider":
        bound = widget.proto.max if high else widget.proto.min
        return int(bound) if widget.proto.data_type == SliderProto.INT else float(bound)
    if widget.type == "select_slider":
        return _option_value(widget, widget.options[-1 if high else 0])
    return widget.max if high else widget.min


def _numeric(at: AppTest) -> list:
    return [*at.slider, *at.select_slider, *at.number_input]


def _ranges(at: AppTest) -> dict[str, tuple]:
    """Each keyed control's range: its two ends, or a select slider's options."""
    return {
        w.key: tuple(w.options) if w.type == "select_slider" else (_end(w, False), _end(w, True))
        for w in _numeric(at)
        if w.key
    }


def _push(at: AppTest, high: bool, equal_ends: bool = False, leave: frozenset[str] = frozenset()) -> None:
    """Set every enabled slider, number box and select slider but those keyed in `leave` to one end (range
    sliders span their range), or, with `equal_ends`, only the range sliders, both ends at one end; then run
    the page if any value changed."""
    changed = False
    for widget in _numeric(at):
        ranged = isinstance(widget.value, (list, tuple))
        if widget.disabled or (equal_ends and not ranged) or widget.key in leave:
            continue
        value = _end(widget, high)
        if value is None:
            continue
        if ranged:
            value = [value, value] if equal_ends else [_end(widget, False), _end(widget, True)]
        changed |= _shown(widget, widget.value) != _shown(widget, value)
        widget.set_value(value)
    if changed:
        at.run()


def _shown(widget, value) -> list:
    """A widget's value as its labels (a select slider's value may be the option or its label)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return [widget.format_func(v) for v in values] if widget.type == "select_slider" else values


def _choice(at: AppTest, key: str):
    """The radio, select box, multiselect or toggle `key`."""
    found = [w for kind in ("radio", "selectbox", "multiselect", "toggle") for w in at.get(kind) if w.key == key]
    assert found, f"no radio, select box, multiselect or toggle {key!r}"
    return found[0]


def _widget(at: AppTest, key: str):
    return next((w for w in _numeric(at) if w.key == key), None)


def _each_alone_at_its_top(at: AppTest, page: str, allowed: set[str]) -> None:
    """From every control at its lowest, each one alone at its highest (the one before it back at its lowest),
    a run each: a control whose range should follow another control's value but does not (sampling steps
    above the smallest T) shows here as an exception or an error box the plain pushes did not show."""
    ends = {
        w.key: (_end(w, False), _end(w, True))
        for w in _numeric(at)
        if w.key and not w.disabled and not isinstance(w.value, (list, tuple))
    }
    previous = None
    for key, (low, high) in ends.items():
        if low == high or _widget(at, key) is None:  # one value, or gone with the last run's settings
            continue
        if previous is not None and _widget(at, previous) is not None:
            _widget(at, previous).set_value(ends[previous][0])
        _widget(at, key).set_value(high)
        at.run()
        assert not at.exception, (page, key, "alone at its highest", at.exception)
        assert {e.value for e in at.error} <= allowed, (page, key, "alone at its highest", at.error)
        previous = key


def _cross(at: AppTest, page: str, dependent: frozenset[str], high: bool) -> None:
    """Push every control but the dependent ones to one end (the dependent ones stay at the other), together
    in one run: the page answers without an exception or an error box, each dependent control's value lies in
    its new range, and (on the pages that say so) a value that had to move is named in a sentence."""
    before = {w.key: w.value for w in _numeric(at) if w.key in dependent}
    _push(at, high, leave=dependent)
    assert not at.exception, (page, "dependent", high, at.exception)
    assert not at.error, (page, "dependent", high, [e.value for e in at.error])
    notes = " ".join(i.value for i in at.info)
    for widget in _numeric(at):
        if widget.key not in before or widget.type == "select_slider":
            continue
        assert _end(widget, False) <= widget.value <= _end(widget, True), (page, widget.key, widget.value)
        if page in SAYS_WHEN_MOVED and widget.value != before[widget.key]:
            assert f"{widget.label} was {before[widget.key]:,}" in notes, (page, widget.key, notes)


def _option_value(widget, label: str):
    """The value behind one of a select slider's option labels (the test knows only the labels)."""
    candidates = [*range(len(widget.options))]  # options that are indices (a frame, a step)
    for cast in (int, float, str):
        with contextlib.suppress(ValueError):
            candidates.insert(0, cast(label))
    for value in candidates:
        try:
            if widget.format_func(value) == label:
                return value
        except (TypeError, ValueError, IndexError, KeyError):
            continue
    raise AssertionError(f"no value for the option {label!r} of {widget.label!r}")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_control_at_its_limits_leaves_the_page_running(app_env, monkeypatch, page):
    name, _, view = page.partition(":")
    if page in BUNDLED:
        monkeypatch.delenv("ATLAS_MANIFEST")
    path = ROOT / ("streamlit_app.py" if page == "home" else f"app_pages/{name}.py")  # home needs the navigation
    at = AppTest.from_file(str(path), default_timeout=300)
    for key, value in CHOICES.get(page, {}).items():  # in the session before the widget is made: its first value
        at.session_state[key] = value
    at.run()
    assert not at.exception
    if view:
        at.segmented_control(key=VIEWS[name]).set_value(view).run()
        assert not at.exception
    for key, value in CHOICES.get(page, {}).items():
        assert _choice(at, key).value == value, (page, key)
    ranges, errors = {}, set()
    for high in (False, True):
        for _ in range(2):  # widgets that appear only for some settings get their turn on the second pass
            _push(at, high)
            assert not at.exception, (page, high, at.exception)
        for key in [] if high else MAIN_BUTTONS.get(page, []):
            _push(at, high)  # the controls that the last button brought out, at their lowest too
            (button,) = [b for b in at.button if b.key == key]
            assert not button.disabled, f"{key} is disabled at the lowest settings"
            button.click().run()
            assert not at.exception, (page, key, at.exception)
        ranges[high] = _ranges(at)
        errors |= {e.value for e in at.error}
    # Controls whose range moved with the others: each one's range follows some other control's value.
    dependent = frozenset(k for k in ranges[False].keys() & ranges[True].keys() if ranges[False][k] != ranges[True][k])
    assert DEPENDENT.get(page, set()) <= dependent, (page, dependent)
    if dependent:
        _cross(at, page, dependent, high=False)  # e.g. T at its smallest with the sampling steps at their most
    for _ in range(2):
        _push(at, False)
    _each_alone_at_its_top(at, page, errors)
    if dependent:
        _cross(at, page, dependent, high=True)
    for high in (False, True):
        _push(at, high, equal_ends=True)
        assert not at.exception, (page, "equal ends", high, at.exception)
