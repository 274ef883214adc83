"""The network I/O radproof does on a user's behalf, in one place, bounded in time and size.

The core never opens a connection: what needs the network (OCSP, RFC 3161 timestamps) takes one of
these functions, chosen by the pipeline or a command.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# urllib.request (with http.client and ssl) is imported by the functions that send: a command that
# never meets an OCSP responder or a TSA does not pay its 15 ms of start-up.

#: An OCSP response is a few kilobytes; more is not an OCSP response.
MAX_OCSP_RESPONSE = 64 * 1024
OCSP_TIMEOUT_S = 5.0
#: A TimeStampResp with its certificates stays far below a megabyte.
MAX_TIMESTAMP_REPLY = 1 << 20
TIMESTAMP_TIMEOUT_S = 30.0


def fetch_ocsp(url: str, request: bytes, *, timeout: float = OCSP_TIMEOUT_S) -> bytes:
    """POST a DER OCSP request to ``url`` (http or https) and return the DER response.

    Raises
    ------
    OSError
        The responder cannot be reached, answers with an HTTP error, or sends too much.
    ValueError
        ``url`` is not an http(s) URL.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"OCSP responder {url!r} is not an http(s) URL")
    import urllib.request

    post = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=request, headers={"Content-Type": "application/ocsp-request"}, method="POST"
    )
    with urllib.request.urlopen(post, timeout=timeout) as answer:  # noqa: S310
        data = bytes(answer.read(MAX_OCSP_RESPONSE + 1))
    if len(data) > MAX_OCSP_RESPONSE:
        raise OSError(f"the OCSP responder at {url} sent more than {MAX_OCSP_RESPONSE} bytes")
    return data


def post_timestamp_query(url: str, query: bytes, *, timeout: float = TIMESTAMP_TIMEOUT_S) -> bytes:
    """POST a DER RFC 3161 TimeStampReq to ``url`` (http or https) and return the reply's body.

    Raises
    ------
    OSError
        The TSA cannot be reached, answers with an HTTP error, or sends more than a megabyte.
    ValueError
        ``url`` is not an http(s) URL.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"TSA address {url!r} is not an http(s) URL")
    import urllib.error
    import urllib.request

    post = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=query,
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(post, timeout=timeout) as answer:  # noqa: S310
            data = bytes(answer.read(MAX_TIMESTAMP_REPLY + 1))
    except urllib.error.HTTPError as exc:
        raise OSError(f"it answered HTTP {exc.code}; check the address") from None
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None
    if len(data) > MAX_TIMESTAMP_REPLY:
        raise OSError(f"it sent more than {MAX_TIMESTAMP_REPLY} bytes")
    return data
