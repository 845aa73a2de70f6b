"""Face (and voice) memory: identities, re-clustering and a persistent memory graph. Knows nothing of video."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
