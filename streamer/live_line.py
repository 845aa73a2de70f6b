"""A live stream's part of the run's status line (streamer.progress shows it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .analyzer import AnalyzerStats
from .sources import StreamSource

if TYPE_CHECKING:  # voice code loads only for runs with voices
    from .voice_analyzer import VoiceStats


def live_part(source: StreamSource, analysis: AnalyzerStats, identities: int, voice: VoiceStats | None) -> str:
    st = source.stats
    heard = "" if voice is None else f" speech {voice.speech_seconds:.0f}s turns {voice.turns} voices {len(voice.nodes)}"
    return (
        f"{source.name}: {st.state.value} {st.fps_in:.1f}/{st.fps_sampled:.1f} fps "
        f"faces {analysis.faces} ids {identities} drops {st.dropped} reconnects {st.reconnects}{heard}"
    )
