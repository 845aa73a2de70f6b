"""Characters: which face on screen goes with which voice (audio-visual synchrony, per speech turn)."""
