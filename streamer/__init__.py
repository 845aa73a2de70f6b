"""Live face memory streamer: cameras in, identities and memory events out."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
