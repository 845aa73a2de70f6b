"""WebRTC ingest: sources fed by WHIP pushes (`push`) and streams pulled over WHEP (`whep`), live sources of the app.

The WHIP server that takes the pushes is part of the app (`streamer.whip_server`); nothing here imports the app,
and nothing is imported here, so opening a camera can reach `whep` without loading aiortc for everyone.
"""
