"""The audio track of a WebRTC peer, into the source's AudioBuffer as 16 kHz mono chunks."""

from __future__ import annotations

import time

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from ..sources.audio_buffer import AudioBuffer
from ..sources.audio_chunker import AudioChunker
from ..sources.state import AudioState, SourceStats


async def read_audio(
    track: MediaStreamTrack, chunker: AudioChunker, buffer: AudioBuffer | None, stats: SourceStats
) -> None:
    """Until the peer stops sending audio. A live buffer drops its oldest audio when the voice path is
    behind, so this never waits. Without a buffer (audio off) the track is still read and thrown away:
    aiortc queues every frame it decodes until someone takes it."""
    if buffer is not None:
        stats.audio_state = AudioState.OK
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return  # a peer may stop its microphone and go on with video
        if buffer is None:
            continue
        assert isinstance(frame, av.AudioFrame)
        # Resampling 20 ms of audio takes microseconds: no reason to leave the loop for it.
        for chunk in chunker.chunks(frame, time.time()):
            buffer.put(chunk)
            stats.audio_seconds += chunk.seconds
        stats.audio_dropped_seconds = buffer.dropped_seconds
