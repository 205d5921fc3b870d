"""A series of logged points thinned while it is read, so that what is kept stays bounded whatever the log's size:
`Thinned` keeps the first point and an even spread over the rest (a stride over their arrival order that
doubles whenever `cap` points are kept), the newest point besides, and, for numbers, the lowest and highest
value each kept point stands for (an envelope, so a spike thinned away still shows)."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from typing import Any


class Thinned:
    """One series' points in step order, each `(step, *values)`, with at most `cap` kept on the stride plus the
    newest. `columns` holds one array typecode per value ("d" for a float, "O" for any object, kept in a list);
    `envelope` names the column whose range each kept point records; `keep` is applied to a point's values when
    it is kept on the stride (the newest point is converted only when asked for). A step at or before the newest
    drops the points from it on first, as TensorBoard does after a restart."""

    def __init__(
        self,
        cap: int,
        columns: str,
        envelope: int | None = None,
        keep: Callable[..., tuple[Any, ...]] | None = None,
    ) -> None:
        self.cap = max(2, cap)
        self.stride = 1
        self.seen = 0  # points added, thinned or not
        self._next = 0  # the arrival index of the next point (kept point k arrived k * stride-th)
        self.steps = array("q")
        self.columns: list[Any] = [[] if code == "O" else array(code) for code in columns]
        self.envelope = envelope
        self.low, self.high = array("d"), array("d")
        self._keep = keep
        self._newest: tuple[int, tuple[Any, ...], bool] | None = None  # (step, values, converted), off the stride
        self._last: int | None = None  # the newest step

    def add(self, step: int, *values: Any) -> None:
        if self._last is not None and step <= self._last:
            self.drop_from(step)
        self._last = step
        self.seen += 1
        index = self._next
        self._next = index + 1
        if index % self.stride:  # off the stride: the newest until the next one comes (the common case, kept short)
            self._newest = (step, values, False)
            if self.envelope is not None and self.steps:
                value = values[self.envelope]
                if value < self.low[-1]:
                    self.low[-1] = value
                elif value > self.high[-1]:
                    self.high[-1] = value
            return
        self._newest = None
        kept = self._keep(*values) if self._keep is not None else values
        self.steps.append(step)
        for column, value in zip(self.columns, kept, strict=True):
            column.append(value)
        if self.envelope is not None:
            self.low.append(values[self.envelope])
            self.high.append(values[self.envelope])
        if len(self.steps) > self.cap:
            self._halve()
            if self.steps[-1] != step:  # the point just kept fell off the new stride: it is the newest still
                self._newest = (step, kept, True)

    def _halve(self) -> None:
        """Double the stride: keep every other kept point from the first, each taking its dropped neighbour's range."""
        self.stride *= 2
        if self.envelope is not None:
            for ends, pick in ((self.low, min), (self.high, max)):
                merged = array("d", map(pick, ends[0::2], ends[1::2]))
                ends[:] = merged + ends[-1:] if len(ends) % 2 else merged
        self.steps[:] = self.steps[0::2]
        for column in self.columns:
            column[:] = column[0::2]

    def drop_from(self, step: int) -> None:
        """Forget the points at `step` and after; the points added next keep the stride's spacing."""
        cut = bisect.bisect_left(self.steps, step)
        newest_goes = self._newest is not None and self._newest[0] >= step
        if cut == len(self.steps) and not newest_goes:
            return
        self._newest = None
        del self.steps[cut:]
        for column in (*self.columns, self.low, self.high):
            del column[cut:]
        if self.envelope is not None and self.steps:  # its range held points now dropped: only its own is sure
            self.low[-1] = self.high[-1] = self.columns[self.envelope][-1]
        self._next = (len(self.steps) - 1) * self.stride + 1 if self.steps else 0
        self._last = self.steps[-1] if self.steps else None

    def shrink_to(self, cap: int) -> None:
        self.cap = max(2, cap)
        while len(self.steps) > self.cap:
            self._halve()

    def __len__(self) -> int:
        return len(self.steps) + (self._newest is not None)

    def points(self) -> list[tuple[Any, ...]]:
        """(step, *values) of every point kept, in step order, the newest last."""
        out = [(step, *row) for step, *row in zip(self.steps, *self.columns, strict=True)]
        if self._newest is not None:
            step, values, converted = self._newest
            if not converted and self._keep is not None:
                values = self._keep(*values)
                self._newest = (step, values, True)
            out.append((step, *values))
        return out

    def ranges(self) -> tuple[list[int], list[float], list[float]]:
        """Steps of the kept points (the newest last) with the lowest and highest value each stands for."""
        steps, low, high = list(self.steps), list(self.low), list(self.high)
        if self._newest is not None and self.envelope is not None:
            value = self._newest[1][self.envelope]
            steps.append(self._newest[0])
            low.append(value)
            high.append(value)
        return steps, low, high
