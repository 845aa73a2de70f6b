"""aiomqtt, loaded without the DNS library that the streamer never uses.

paho (under aiomqtt) imports dnspython for one feature, looking a broker up by DNS SRV record
(`connect_srv`), which the streamer never calls: ~30 ms of every start. While paho loads, that
import fails, as if dnspython were not installed; afterwards it is importable again as ever.
"""

from __future__ import annotations

import sys

_hidden = "dns.resolver" not in sys.modules
if _hidden:
    sys.modules["dns.resolver"] = None  # type: ignore[assignment]  # `import dns.resolver` raises ImportError
try:
    import aiomqtt as aiomqtt
finally:
    if _hidden and sys.modules.get("dns.resolver", ...) is None:
        del sys.modules["dns.resolver"]
