"""radproof: prove whether a radiograph is real.

Capture signatures (DICOM PS3.15), invisible watermarks, and a detector for AI-generated
radiographs, combined into one verdict per image.

>>> import radproof
>>> verdict = radproof.check_file("capture.dcm", trust="ca.pem")
>>> verdict.verdict, verdict.passed

For many images, build one :class:`Checker` and reuse it (docs/api.md). The names below are
imported on first use, so ``import radproof`` stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from radproof.errors import RadproofError

if TYPE_CHECKING:
    from radproof.check import Evidence, Policy, Reason, ReasonCode, Verdict, VerdictKind, policy_for_profile
    from radproof.pipeline import Checker, check_bytes, check_dataset, check_file

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY = {
    "Checker": "radproof.pipeline",
    "check_bytes": "radproof.pipeline",
    "check_dataset": "radproof.pipeline",
    "check_file": "radproof.pipeline",
    "Evidence": "radproof.check",
    "Policy": "radproof.check",
    "Reason": "radproof.check",
    "ReasonCode": "radproof.check",
    "Verdict": "radproof.check",
    "VerdictKind": "radproof.check",
    "policy_for_profile": "radproof.check",
}

__all__ = [
    "Checker",
    "Evidence",
    "Policy",
    "RadproofError",
    "Reason",
    "ReasonCode",
    "Verdict",
    "VerdictKind",
    "__version__",
    "check_bytes",
    "check_dataset",
    "check_file",
    "policy_for_profile",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'radproof' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
