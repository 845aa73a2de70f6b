"""What a person watching the terminal sees: a bar per file, a stats line for live streams."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # loaded only when bars are shown: a quiet run (-q) never draws one
    from tqdm import tqdm


MAX_FILE_BARS = 8


class Progress:
    def __init__(self, enabled: bool = True, out: TextIO = sys.stderr, every_seconds: float = 2.0) -> None:
        self._enabled = enabled
        self._out = out
        self._every = every_seconds
        self._bars: dict[str, tqdm[Any]] = {}
        self._last_line = 0.0
        self._overall: tqdm[Any] | None = None  # one bar counting files, when there are many

    def expect_files(self, count: int) -> None:
        """With more files than fit on a screen, one bar counts finished files instead."""
        if self._enabled and count > MAX_FILE_BARS:
            from tqdm import tqdm  # noqa: PLC0415

            self._overall = tqdm(total=count, desc="files", unit="file", file=self._out, dynamic_ncols=True)

    def add_file(self, stream: str, duration: float | None) -> None:
        if self._enabled and self._overall is None:
            from tqdm import tqdm  # noqa: PLC0415

            self._bars[stream] = tqdm(
                total=round(duration, 1) if duration else None,
                desc=stream,
                unit="s",
                file=self._out,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s video [{elapsed}<{remaining}, {rate_fmt}] {postfix}",
            )

    def file_at(self, stream: str, t: float, faces: int, identities: int) -> None:
        bar = self._bars.get(stream)
        if bar is not None:
            bar.n = round(min(t, bar.total or t), 1)
            bar.set_postfix_str(f"faces {faces} ids {identities}", refresh=False)
            bar.refresh()

    def file_done(self, stream: str) -> None:
        if self._overall is not None:
            self._overall.update(1)
        bar = self._bars.pop(stream, None)
        if bar is not None:
            if bar.total:
                bar.n = bar.total
            bar.close()

    def live_line(self, parts: list[str]) -> None:
        """One line for all live streams, at most every few seconds."""
        now = time.monotonic()
        if not self._enabled or not parts or now - self._last_line < self._every:
            return
        self._last_line = now
        print(" | ".join(parts), file=self._out, flush=True)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._overall is not None:
            self._overall.close()
            self._overall = None
