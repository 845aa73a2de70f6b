"""Leave undecoded the frames of a file that nobody will see and no other frame needs."""

from __future__ import annotations

import av
import av.video.stream

from .clock import StreamClock
from .sampler import TimestampSampler


class NonRefSkip:
    """Most frames of a file are never analysed. A frame that no other frame refers to (most
    B-frames of a camera or phone recording) is decoded only when the sampler will take it, so the
    sampled frames are the very same as when every frame is decoded. One per connection; `before`
    is called with each video packet before it is decoded."""

    def __init__(self, video: av.video.stream.VideoStream, sampler: TimestampSampler, clock: StreamClock, step: float) -> None:
        self._context = video.codec_context
        self._sampler, self._clock, self._step = sampler, clock, step
        tb = video.time_base
        # pts * num / den in ints: the very float of pts * time_base, without a Fraction per packet
        self._time_base = None if tb is None else (tb.numerator, tb.denominator)
        self._setting = "DEFAULT"  # the decoder's own: decode every frame

    def before(self, packet: av.Packet) -> None:
        pts, tb = packet.pts, self._time_base
        t = None if pts is None or tb is None else self._clock.peek(pts * tb[0] / tb[1])
        setting = "DEFAULT" if t is None or self._sampler.may_take(t, self._step) else "NONREF"
        if setting != self._setting:
            self._context.skip_frame = self._setting = setting
