"""The minimum strength of a passphrase that protects a new secret (a private key, a watermark key).

One rule, checked wherever radproof creates an encrypted secret; existing secrets open with whatever
passphrase they were made with. The rule is deliberately simple enough to state in one line:

* at least 12 characters;
* at least 6 different characters;
* not built on a common password (``Password2024!``, ``radiology123``);
* about 50 bits by a conservative estimate: each character counts for the size of the character
  classes the passphrase uses, except a repeat of the previous character, the third and later
  characters of a sequence (``abcd``, ``4321``, ``qwerty``) and a common word, which count for
  (almost) nothing.

Four or five random words pass easily (``purple staple horse`` is about 100 bits by this count);
so does nearly every random string of 12 letters and digits.
"""

from __future__ import annotations

import math
import unicodedata

from radproof.errors import PassphraseError

MIN_LENGTH = 12
MIN_DISTINCT = 6
MIN_BITS = 50.0

REQUIREMENT = (
    f"a new passphrase needs at least {MIN_LENGTH} characters, some variety, and no common password, "
    "repeat or sequence such as 1234 or qwerty (four or five random words work well)"
)

# Words at the top of every cracking list, and the obvious ones for a radiology department.
# Matched case-insensitively, ignoring spaces and punctuation, also inside a longer passphrase.
_COMMON_TEXT = """
    password passw0rd passphrase letmein welcome admin administrator root toor master secret changeme
    default login qwerty qwertz azerty iloveyou monkey dragon football baseball soccer hockey sunshine
    princess trustno1 shadow superman batman starwars whatever freedom michael jennifer jordan hunter
    computer internet access summer winter spring autumn hello charlie donald mustang ninja
    abc123 123456 1234567 12345678 123456789 1234567890 111111 000000 654321 987654321 666666
    test testing example sample demo guest user username temp temporary
    hospital radiology radiologist technologist xray dicom pacs imaging clinic doctor nurse patient
    radproof correcthorsebatterystaple
"""
_COMMON = frozenset(_COMMON_TEXT.split())
# The alphabet, digits and keyboard rows: a run along one of them (either way) adds no guesswork.
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "azertyuiop",
)
_RUNS = frozenset(
    run for seq in _SEQUENCES for i in range(len(seq) - 2) for run in (seq[i : i + 3], seq[i : i + 3][::-1])
)
_WORD_BITS = 10.0  # as if drawn from a cracker's list of about a thousand words
_MIN_WORD = 4


class WeakPassphraseError(PassphraseError):
    """A new secret was to be encrypted with a passphrase below the minimum strength."""


def _pool(text: str) -> int:
    """Size of the character classes ``text`` draws from (lower, upper, digits, ASCII symbols, other)."""
    size = 0
    if any(c.islower() and c.isascii() for c in text):
        size += 26
    if any(c.isupper() and c.isascii() for c in text):
        size += 26
    if any(c.isdigit() and c.isascii() for c in text):
        size += 10
    if any(c.isascii() and not c.isalnum() for c in text):
        size += 33
    if any(not c.isascii() for c in text):
        size += 100  # accented letters, other scripts: a rough but not generous figure
    return max(size, 2)


def estimate_bits(passphrase: str) -> float:
    """A conservative strength estimate in bits (see the module docstring for the counting)."""
    text = unicodedata.normalize("NFC", passphrase)
    lower = text.lower()
    per_char = math.log2(_pool(text))
    bits, i = 0.0, 0
    while i < len(lower):
        word = _common_word_at(lower, i)
        if word:
            bits += _WORD_BITS
            i += word
            continue
        repeat = i > 0 and lower[i] == lower[i - 1]
        # One step (``ef``) happens by chance in random text; a run of three (``efg``) does not.
        run = i > 1 and lower[i - 2 : i + 1] in _RUNS
        if repeat or run:
            bits += 1.0  # almost free to guess
        else:
            bits += per_char
        i += 1
    return bits


def _common_word_at(lower: str, start: int) -> int:
    """Length of the longest common word starting at ``start`` (0 when none)."""
    best = 0
    for end in range(start + _MIN_WORD, min(len(lower), start + 26) + 1):
        if lower[start:end] in _COMMON:
            best = end - start
    return best


def weakness(passphrase: str | bytes) -> str | None:
    """Why ``passphrase`` is too weak for a new secret, or None when it is strong enough."""
    text = passphrase.decode("utf-8", errors="replace") if isinstance(passphrase, bytes) else passphrase
    text = unicodedata.normalize("NFC", text)
    if len(text) < MIN_LENGTH:
        return f"it has {len(text)} characters"
    core = "".join(c for c in text.lower() if c.isalnum()).strip("0123456789")
    if not core or core in _COMMON:
        return "it is a common password"
    if len(set(text.lower())) < MIN_DISTINCT:
        return f"it uses only {len(set(text.lower()))} different characters"
    if estimate_bits(text) < MIN_BITS:
        return "it is made of common words, repeats or sequences"
    return None


def check_new_passphrase(passphrase: str | bytes) -> None:
    """Refuse a passphrase below the minimum strength for a new secret.

    Raises
    ------
    WeakPassphraseError
        With a one-line message saying why and what is required.
    """
    reason = weakness(passphrase)
    if reason is not None:
        raise WeakPassphraseError(f"passphrase too weak ({reason}): {REQUIREMENT}")
