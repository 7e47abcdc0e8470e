"""The OTLP/HTTP exporter: POST one encoded batch, report what the endpoint said.

Blocking (the scheduler runs it on a worker thread). Redirects are never
followed; a loopback endpoint is reached without a proxy.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.enrichment.targets import is_local
from bridge.redact import redact_text

# ===================================================================== http


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None  # None: no HTTP answer (connection refused, timeout, …)
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def permanent(self) -> bool:
        """The batch itself is bad: sending it again cannot succeed (OTLP/HTTP: 400, 413, 415)."""
        return self.status in (400, 413, 415)


PostFn = Callable[[str, bytes, Sequence[tuple[str, str]], float], PostResult]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # an OTLP endpoint does not redirect; never follow one elsewhere


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def post_http(url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout_s: float) -> PostResult:
    """POST one protobuf batch (blocking; run on a worker thread)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    proxies = urllib.request.ProxyHandler({}) if is_local(host) else urllib.request.ProxyHandler()
    opener = urllib.request.build_opener(proxies, _NoRedirect())
    request = urllib.request.Request(url, data=body, method="POST")
    for key, value in headers:
        request.add_header(key, value)
    request.add_header("Content-Type", "application/x-protobuf")
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read()
            return PostResult(int(response.status))
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.read()
        return PostResult(exc.code, f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return PostResult(None, redact_text(str(reason)) or type(exc).__name__)
