"""Peer connections with the configured ICE servers and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from ..config import IceServer


def new_peer(servers: Sequence[IceServer] = ()) -> RTCPeerConnection:
    # Always an explicit list: aiortc's default is a public STUN server, which a closed network
    # cannot reach, and gathering would wait for it.
    ice = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers]
    return RTCPeerConnection(RTCConfiguration(iceServers=ice))
