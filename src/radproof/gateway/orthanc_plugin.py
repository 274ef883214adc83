"""Orthanc's Python plugin script: radproof's policy on every C-STORE Orthanc receives (docs/gateway.md).

Orthanc configuration::

    "Plugins": ["/usr/share/orthanc/plugins/libOrthancPython.so"],
    "PythonScript": ".../radproof/gateway/orthanc_plugin.py"

Environment of the Orthanc process: ``RADPROOF_CONFIG`` (the TOML file: ``[trust]``, ``[check]``,
``[gateway.actions]``, ``[gateway] quarantine``), and ``RADPROOF_SITE_PACKAGES`` when radproof is
installed in another environment than the Python Orthanc embeds (a virtual environment's
site-packages). This file runs only inside Orthanc: it imports the ``orthanc`` module Orthanc provides.
"""

import os
import sys

for _folder in filter(None, os.environ.get("RADPROOF_SITE_PACKAGES", "").split(os.pathsep)):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

import orthanc  # type: ignore[import-not-found]  # noqa: E402  (provided by Orthanc)

from radproof.config import load_settings  # noqa: E402
from radproof.gateway.inline import InlineFilter  # noqa: E402

_FILTER = InlineFilter(load_settings())


def _incoming(received: object) -> int:
    data = received.GetInstanceData()  # type: ignore[attr-defined]
    calling = received.GetInstanceRemoteAet()  # type: ignore[attr-defined]
    try:
        return _FILTER.filter(bytes(data), str(calling))
    except Exception as exc:  # never let Orthanc store an image the policy could not judge
        orthanc.LogError(f"radproof: refused an instance, the check failed ({type(exc).__name__})")
        return 0xC000


orthanc.RegisterIncomingCStoreInstanceFilter(_incoming)
orthanc.LogWarning("radproof: every C-STORE is checked before Orthanc stores it")
