"""WebRTC ingest: cameras pushed over WHIP (`whip`), streams pulled over WHEP (`whep`), both live sources of the app.

Nothing is imported here, so `streamer.sources` can reach `whep` without loading the app.
"""
