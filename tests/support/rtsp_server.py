"""A small RTSP server for tests, built on gst-rtsp-server.

Runs under the system python that has PyGObject (python3-gi); tests drive it through
`support.rtsp.RtspServer` (tests/support/rtsp.py). Prints "READY <port>" on stdout once it accepts clients.

    python3 rtsp_server.py --port 8554 --mount /cam --file clip.mp4   # an H.264 MP4, no transcoding
    python3 rtsp_server.py --port 8554 --mount /cam --pattern ball    # an endless live test pattern
    python3 rtsp_server.py --port 8554 --mount /cam --launch "( ... name=pay0 ... )"
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def file_launch(path: str) -> str:
    # Serve the file's own H.264 stream; the media pipeline syncs to the clock, so it plays in real time.
    return f'( filesrc location="{path}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'


def pattern_launch(pattern: str, width: int, height: int, fps: int) -> str:
    # A live source never ends, like a camera; openh264 keeps it to plugins-bad (x264 lives in -ugly).
    return (
        f"( videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={width},height={height},framerate={fps}/1"
        f" ! videoconvert ! openh264enc gop-size={fps} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mount", default="/cam")
    media = ap.add_mutually_exclusive_group(required=True)
    media.add_argument("--file", help="MP4 (H.264) to serve as is")
    media.add_argument("--pattern", help="videotestsrc pattern served live (ball, smpte, snow, ...)")
    media.add_argument("--launch", help="a gst-rtsp-server launch line with a payloader named pay0")
    ap.add_argument("--size", default="320x240", help="WxH for --pattern")
    ap.add_argument("--fps", type=int, default=25, help="frame rate for --pattern")
    args = ap.parse_args()

    Gst.init(None)
    if args.file:
        launch = file_launch(args.file)
    elif args.pattern:
        width, height = (int(v) for v in args.size.split("x"))
        launch = pattern_launch(args.pattern, width, height, args.fps)
    else:
        launch = args.launch

    server = GstRtspServer.RTSPServer()
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)  # every client gets its own pipeline, so a file plays from its start
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on port {args.port}")

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
