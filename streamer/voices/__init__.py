"""The voice path: voice activity, speaker turns, speaker embeddings and transcripts."""
