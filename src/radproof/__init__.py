"""radproof: prove whether a radiograph is real.

Capture signatures (DICOM PS3.15), invisible watermarks, and a detector for AI-generated
radiographs, combined into one verdict per image.
"""

from radproof.errors import RadproofError

__all__ = ["RadproofError", "__version__"]
__version__ = "0.1.0"
