"""Low layers never load high ones: importing a low module (and every module of a low package) in a fresh
interpreter leaves the high ones out of sys.modules, so no import cycle can form between them."""

import json
import subprocess
import sys

import pytest

# (low modules or packages, high packages they must never load)
LAYERS = [
    (["streamer.metrics"], ["streamer.app"]),
    (["streamer.shared_parts", "streamer.analyzer", "streamer.voice_analyzer"], ["streamer.app", "streamer.metrics"]),
    (["streamer.sources"], ["streamer.webrtc", "streamer.app"]),
    # WebRTC sources are opened by the app; the WHIP server that drives the app lives above both
    (["streamer.webrtc"], ["streamer.app", "streamer.whip_server"]),
    (["memory"], ["streamer"]),
    # a live run reads camera URLs before it restarts itself under jemalloc: nothing heavy loads first
    (["streamer.source_urls"], ["streamer.sources", "av", "numpy"]),
]

_LOADED = """
import importlib, json, pkgutil, sys
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for sub in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(sub.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(("low", "high"), LAYERS, ids=[low[0] for low, _ in LAYERS])
def test_a_low_layer_never_loads_a_high_one(low: list[str], high: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", _LOADED, *low], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if any(m == h or m.startswith(h + ".") for h in high)] == []
