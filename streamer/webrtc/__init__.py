"""WebRTC ingest: sources fed by WHIP pushes (`push`) and streams pulled over WHEP (`whep`), live sources of the app.

The WHIP server that takes the pushes sits above the app (`streamer.whip_server`): nothing here imports the app.
This file imports nothing, so opening a camera reaches `whep` without loading aiortc for everyone.
"""
