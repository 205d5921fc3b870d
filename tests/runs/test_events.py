"""The pieces under the TensorBoard reader: CRC-32C against tensorboard's own (pure Python) one, the framing of
real SummaryWriter files against tensorboard's own record reader, and thinning while reading."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference_crc
from torch.utils.tensorboard import SummaryWriter

from core.runs import crc32c, events
from core.runs.events import Cursor, records
from core.runs.thinned import Thinned


def test_crc32c_of_many_spans_matches_tensorboards_own():
    data = np.random.default_rng(0).integers(0, 256, size=20_000, dtype=np.uint8)
    raw = data.tobytes()
    # short spans share a length (computed together), long ones go lane by lane (4 * LANE bytes and up)
    spans = [(0, 0), (1, 1), (5, 3), (9, 8), (17, 45), (300, 45), (3, 4 * crc32c.LANE - 1), (7, 4 * crc32c.LANE)]
    spans += [(11, 4 * crc32c.LANE + 13), (0, len(raw))]
    got = crc32c.masked_crc32c(data, [s for s, _ in spans], [n for _, n in spans])
    assert got.tolist() == [reference_crc(raw[s : s + n]) for s, n in spans]


def _scalar_file(folder, steps, image_at=None):
    writer = SummaryWriter(str(folder))
    for step in steps:
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        if step == image_at:  # one record far longer than the others
            grid = np.random.default_rng(step).integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
            writer.add_image("grid", grid, step, dataformats="HWC")
    writer.close()
    (path,) = folder.glob("events.out.tfevents.*")
    return path


def test_records_in_small_chunks_are_tensorboards_records_and_a_grown_file_is_read_from_where_it_stopped(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(events, "CHUNK", 100)  # a few records per chunk; the image record (~5 KB) longer than one
    path = _scalar_file(tmp_path, range(40), image_at=20)
    whole = path.read_bytes()
    expected = list(RawEventFileLoader(str(path)).Load())
    cursor = Cursor()
    assert list(_records(path, cursor, limit=10**9)) == expected
    assert cursor.offset == len(whole) and cursor.stop is None

    path.write_bytes(whole[:-5])  # a writer halfway through its last record: wait for the rest
    cursor = Cursor()
    assert list(_records(path, cursor, limit=10**9)) == expected[:-1] and cursor.stop == "truncated"
    path.write_bytes(whole)
    assert list(_records(path, cursor, limit=10**9)) == expected[-1:] and cursor.stop is None  # only the new one

    limit = len(whole) // 2
    cursor = Cursor()
    got = list(_records(path, cursor, limit))
    assert got == expected[: len(got)] and cursor.stop == "limit"
    assert cursor.offset <= limit < cursor.offset + 12 + len(expected[len(got)]) + 4  # the next one ends past it

    corrupt = bytearray(whole)
    corrupt[cursor.offset + 14] ^= 1  # a flipped bit in the data of the first record past the half
    path.write_bytes(bytes(corrupt))
    again = Cursor()
    assert list(_records(path, again, limit=10**9)) == got and again.stop == "corrupt"
    assert again.offset == cursor.offset  # it stays at the damaged record


def _records(path, cursor, limit):
    with open(path, "rb") as f:
        yield from records(f, cursor, limit)


def _bucket_ranges(values, kept_indices):
    """The lowest and highest value from each kept index up to the next (the oracle for the envelope)."""
    buckets = [values[a:b] for a, b in zip(kept_indices, [*kept_indices[1:], len(values)], strict=True)]
    return [min(b) for b in buckets], [max(b) for b in buckets]


@pytest.mark.parametrize("count", [1, 7, 8, 9, 100, 1001])
def test_thinning_keeps_at_most_cap_an_even_spread_the_ends_and_the_range(count):
    cap = 8
    series = Thinned(cap, "dd", envelope=1)
    values = np.random.default_rng(count).normal(size=count).tolist()
    values[count // 2] = 50.0  # a spike that will not be a kept point
    for k, value in enumerate(values):
        series.add(10 * k, float(k), value)
        assert len(series) <= cap + 1  # memory stays bounded while reading: the kept points and the newest
    points = series.points()
    steps = [p[0] for p in points]
    assert steps[0] == 0 and steps[-1] == 10 * (count - 1)  # the first and the last are kept
    assert [p[2] for p in points] == [values[s // 10] for s in steps]  # each kept point is exactly as logged
    on_stride = steps[:-1] if len(steps) > 1 and (steps[-1] // 10) % series.stride else steps
    gaps = set(np.diff(on_stride).tolist())
    assert gaps <= {10 * series.stride}  # an even spread
    if count <= cap:
        assert len(points) == count and series.stride == 1
    else:
        assert series.stride > 1 and len(on_stride) > cap // 2  # thinned, but not more than it must be
    low, high = _bucket_ranges(values, [s // 10 for s in on_stride])
    got_steps, got_low, got_high = series.ranges()
    assert got_steps == steps
    assert got_low[: len(low)] == low and got_high[: len(high)] == high
    assert max(got_high) == max(values)  # the spike shows in the envelope


def test_a_step_at_or_before_the_newest_drops_the_points_from_it_on_and_keeps_the_spacing():
    series = Thinned(4, "d")
    for step in range(10):  # stride 4 after thinning: 0, 4, 8 and the newest 9
        series.add(step, float(step))
    assert [p[0] for p in series.points()] == [0, 4, 8, 9] and series.stride == 4
    series.add(6, -1.0)  # a restart from step 6
    assert [p[0] for p in series.points()] == [0, 4, 6]
    for step in range(7, 13):
        series.add(step, float(step))
    # arrivals go on from the last kept one (4): 6, 7, 8, 9 -> the 4th after it (9) is kept, then 12 is the newest
    assert [p[0] for p in series.points()] == [0, 4, 9, 12] and [p[1] for p in series.points()][2] == 9.0
