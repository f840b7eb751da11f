"""Keeping secrets out of every output: URLs shown without their passwords, text scrubbed.

Passwords live in URLs (``postgresql+psycopg://user:pw@host/db``, ``?password=``), API
keys in settings, and a webhook's path is its credential. ``redact_url`` is how a URL is
shown anywhere (run.json, summaries, ``storecast config``, error messages); ``scrub``
removes known secret values from text we did not build ourselves (driver errors, logs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

MASK = "***"
#: Query parameters whose value is a credential (psycopg accepts ``?password=``).
SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "secret", "token", "access_token",
                               "api_key", "apikey", "key", "sslpassword", "sig", "signature"})


def _split(url: str):  # type: ignore[no-untyped-def]
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts if parts.scheme and "://" in url else None


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``."""
    parts = _split(url)
    if parts is None:
        return url
    scheme, _, rest = url.partition("://")
    end = len(rest)
    for stop in "/?#":
        if stop in rest:
            end = min(end, rest.index(stop))
    authority, tail = rest[:end], rest[end:]
    if parts.password is not None:
        user, _, host = authority.rpartition("@")
        authority = f"{user.split(':', 1)[0]}:{MASK}@{host}"
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in SECRET_QUERY_KEYS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*=-")
            tail = tail.replace("?" + parts.query, "?" + query, 1)
    return f"{scheme}://{authority}{tail}"


def redact_webhook(url: str) -> str:
    """A webhook URL is a credential (Slack, Teams): show only where it goes."""
    parts = _split(url)
    if parts is None:
        return MASK if url else url
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}/{MASK}"


def url_secrets(url: str) -> list[str]:
    """The secret parts of ``url``, raw and percent-decoded, for ``scrub``."""
    parts = _split(url)
    if parts is None:
        return []
    found: list[str] = []
    if parts.password:
        raw = parts.netloc.rpartition("@")[0].split(":", 1)[1]
        found += [raw, unquote(raw)]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in SECRET_QUERY_KEYS and v]
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class SecretFilter(logging.Filter):
    """A logging filter that scrubs known secrets from every record passing a handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = scrub(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def install_log_scrubber(secrets: Iterable[str]) -> SecretFilter:
    """Scrub ``secrets`` from every record the root logger's handlers write (one filter, updated)."""
    root = logging.getLogger()
    found = next((f for h in root.handlers for f in h.filters if isinstance(f, SecretFilter)), None)
    scrubber = found or SecretFilter()
    scrubber.secrets = sorted({*scrubber.secrets, *secrets})
    for handler in root.handlers:
        if scrubber not in handler.filters:
            handler.addFilter(scrubber)
    return scrubber
