"""Exceptions a user can cause.

Every error raised for a reason the user can fix derives from :class:`RadproofError`; its message
says what went wrong and what to do. The command line prints the message and exits with status 2.
"""


class RadproofError(Exception):
    """Base class of every error a user can cause (bad file, wrong key, missing trust anchor)."""


class InputError(RadproofError):
    """An input file is missing, unreadable, corrupt, or not a radiograph."""


class UnsupportedError(InputError):
    """The file is valid but uses a feature radproof does not handle (say which)."""


class ResourceLimitError(InputError):
    """The file declares more data than radproof is willing to allocate (a decompression bomb)."""


class KeyFileError(RadproofError):
    """A key or certificate file is missing, malformed, or cannot be decrypted."""


class PassphraseError(KeyFileError):
    """No passphrase was supplied, or it does not open the key."""


class PolicyError(RadproofError):
    """A request violates a security policy (weak algorithm, short key, untrusted signer)."""


class ConfigError(RadproofError):
    """The configuration file or environment is invalid."""
