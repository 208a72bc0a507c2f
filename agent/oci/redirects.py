"""Where a registry may redirect secprof: the rule :class:`~agent.oci.transport.HostTransport`
checks each redirect against before following it (at most
:data:`~agent.oci.transport.MAX_REDIRECTS` of them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

_API_RE = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
_READS = frozenset({"GET", "HEAD"})

# (origin URL, target URL, method) -> why the redirect is refused, or "" to follow it.
RedirectRule = Callable[[str, str, str], str]


def repository_of(url: str) -> str | None:
    """``host/repository`` of a distribution API URL; ``None`` for any other URL."""
    parts = urlsplit(url)
    match = _API_RE.match(parts.path)
    return f"{parts.netloc}/{match.group('name')}" if match else None


def redirect_rule(*, plain_http: frozenset[str], scope_of: Callable[[str], object | None]
                  ) -> RedirectRule:
    """The redirects a registry may send: to http(s) only, never down from https to plain
    http (unless the target is an insecure registry), and either to an API URL of a repository
    in the same trust scope (``scope_of`` maps ``host/repository`` to its scope, ``None`` when
    none covers it), or, for a blob read only, anywhere (a blob is checked against its digest:
    registries send blobs from object storage)."""

    def refusal(origin: str, target: str, method: str) -> str:
        src, dst = urlsplit(origin), urlsplit(target)
        if dst.scheme not in ("http", "https") or not dst.hostname:
            return f"the target is not an http(s) URL ({dst.scheme or 'no scheme'})"
        if src.scheme == "https" and dst.scheme == "http" and dst.netloc not in plain_http:
            return "it goes from https down to plain http"
        target_name, origin_name = repository_of(target), repository_of(origin)
        if target_name is not None and origin_name is not None:
            if target_name == origin_name:
                return ""
            scope = scope_of(target_name)
            if scope is None or scope != scope_of(origin_name):
                return f"{target_name} is outside the trust scope of {origin_name}"
            return ""
        if method in _READS and "/blobs/sha256:" in src.path:
            return ""
        return "only blob reads may leave the registry's API"

    return refusal


