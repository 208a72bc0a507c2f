"""The HTTP layer under :mod:`agent.oci.registry`: oras-py, with what it gets wrong for an
unattended daemon fixed (research/oci-sigstore.md §2.4).

oras-py's :class:`~oras.provider.Registry` gives the session set-up (cookies ignored, TLS
verification, ``http`` only for insecure registries) and ``do_request``, the one method all of
its HTTP goes through. That method is replaced here: a total deadline per operation and a connect
timeout (oras-py sets none and hangs on a black hole), a few retries with a short backoff for
reads only (never its 3-5-11-29-83 s schedule, on any error), and :class:`HostAuth` (Basic, or
Bearer with one token per scope). Every response is streamed, and read with :func:`read_body`
against a size cap and the deadline.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode, urlsplit

import oras.provider  # import before anything else from oras: its modules import in a cycle
import requests
import urllib3

from agent.codes import Code
from agent.errors import RegistryError, RegistryUnreachable
from agent.oci.auth import DEFAULT_TOKEN_LIFETIME_S, Challenge, Credential, HostAuth, Token

MAX_TOKEN_BYTES = 64 * 1024
MAX_ERROR_BYTES = 4 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_READS = frozenset({"GET", "HEAD"})
_BACKOFF_CAP_S = 2.0
_SCOPE_RE = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPolicy:
    timeout_s: float = 30.0  # one operation, retries and pauses included
    connect_timeout_s: float = 5.0
    retries: int = 2
    backoff_s: float = 0.25  # first pause; doubles, up to 2 s
    plain_http: frozenset[str] = field(default_factory=frozenset)


def _scope(url: str, method: str) -> str:
    match = _SCOPE_RE.match(urlsplit(url).path)
    if not match:
        return ""
    action = "pull" if method in _READS else "pull,push"
    return f"repository:{match.group('name')}:{action}"


def registry_message(response: requests.Response, deadline: float) -> str:
    """The registry's own words about an error, short and printable."""
    try:
        body = read_body(response, MAX_ERROR_BYTES, deadline, truncate=True)
    except RegistryError:
        return ""
    try:
        errors = json.loads(body).get("errors", [])
        text = "; ".join(str(e.get("message", e.get("code", ""))) for e in errors[:3])
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace").splitlines()[0] if body else ""
    return "".join(c for c in text if c.isprintable())[:200]


def read_body(response: requests.Response, limit: int, deadline: float, *,
              oversize: RegistryError | None = None, truncate: bool = False) -> bytes:
    """Read a streamed body: at most ``limit`` bytes, and no later than ``deadline``. More than
    ``limit`` raises ``oversize`` (or a generic error), unless ``truncate``. ``read1`` returns
    what has arrived; ``iter_content`` would wait to fill its chunk, and the read timeout alone
    lets a slow sender go on for ever."""
    chunks, total = [], 0
    try:
        while chunk := response.raw.read1(65536, decode_content=True):
            total += len(chunk)
            if total > limit:
                if truncate:
                    chunks.append(chunk[: limit - (total - len(chunk))])
                    break
                raise oversize or RegistryError(
                    f"{response.url}: the body is larger than {limit} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise RegistryUnreachable(f"{response.url}: the transfer took longer than the "
                                          "timeout", hint="raise [oci] timeout_s")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise RegistryUnreachable(f"{response.url}: the transfer broke off: {exc}") from None
    finally:
        response.close()
    return b"".join(chunks)


class HostTransport(oras.provider.Registry):  # type: ignore[misc]
    """One registry host: oras-py's session set-up, with ``do_request`` replaced."""

    def __init__(self, host: str, *, auth: HostAuth, policy: HttpPolicy,
                 session: requests.Session, sleep: Callable[[float], None]) -> None:
        super().__init__(hostname=host, insecure=host in policy.plain_http)
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.session = session
        self.base = f"{self.prefix}://{host}"
        self._host_auth = auth
        self._policy = policy
        self._sleep = sleep

    def do_request(  # noqa: PLR0917 -- oras-py's signature, which this method replaces
        self, url: str, method: str = "GET", data: bytes | None = None,
        headers: dict[str, str] | None = None, json: Any = None, stream: bool = False, *,
        deadline: float | None = None,
    ) -> requests.Response:
        """One logical request: authenticated, retried (reads only), within ``deadline``.

        The response is always streamed; read it with :func:`read_body`. Raises
        :class:`RegistryUnreachable` when the registry does not answer usefully in time.
        """
        if json is not None:
            raise TypeError("send raw bytes: a manifest's digest is over its exact bytes")
        deadline = deadline if deadline is not None else time.monotonic() + self._policy.timeout_s
        pause = self._policy.backoff_s
        for attempt in range(self._policy.retries + 1):
            try:
                response = self._authorized(method, url, dict(headers or {}), data, deadline)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"cannot reach {self.hostname}: {_network_reason(exc)}"
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response
                said = registry_message(response, deadline)
                problem = f"{self.hostname} answered {response.status_code}" + (
                    f": {said}" if said else "")
            last = attempt == self._policy.retries or method not in _READS
            if last or time.monotonic() + pause >= deadline:
                break
            self._sleep(pause)
            pause = min(pause * 2, _BACKOFF_CAP_S)
        raise RegistryUnreachable(problem, hint="check that the registry is up and reachable; "
                                  "secprof serves bases it has cached meanwhile")

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              deadline: float) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout("the operation's time is up")
        timeout = (min(self._policy.connect_timeout_s, remaining), remaining)
        try:
            return self.session.request(method, url, headers=headers, data=data, stream=True,
                                        timeout=timeout, verify=self._tls_verify)
        except requests.exceptions.SSLError as exc:
            raise RegistryError(
                f"TLS with {self.hostname} failed: {exc}", code=Code.REGISTRY_TLS,
                hint="if this registry serves plain HTTP, add it to [oci] insecure_registries",
            ) from None
        except requests.exceptions.InvalidURL as exc:
            raise RegistryError(f"bad registry URL {url}: {exc}") from None

    def _authorized(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                    deadline: float) -> requests.Response:
        scope = _scope(url, method)
        sent = self._host_auth.header(scope)
        if sent:
            headers["Authorization"] = sent
        response = self._send(method, url, headers, data, deadline)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        response.close()
        if sent:  # what worked before (an expired token, a wrong scope) does not any more
            self._host_auth.forget(scope)

        def fetch(asked: Challenge, credential: Credential | None) -> Token:
            return self._token(asked, credential, deadline)

        headers["Authorization"] = self._host_auth.answer(challenge, scope, fetch)
        response = self._send(method, url, headers, data, deadline)
        if response.status_code == 401:
            response.close()
            raise self._host_auth.rejected() if self._host_auth.credential else (
                self._host_auth.required())
        return response

    def _token(self, asked: Challenge, credential: Credential | None, deadline: float) -> Token:
        params = {k: v for k, v in (("service", asked.service), ("scope", asked.scope)) if v}
        url = f"{asked.realm}{'&' if '?' in asked.realm else '?'}{urlencode(params)}"
        headers = {"Accept": "application/json"}
        if credential is not None:
            headers["Authorization"] = credential.basic()
        response = self._send("GET", url, headers, None, deadline)
        if response.status_code != 200:
            response.close()
            raise self._host_auth.rejected() if response.status_code in (401, 403) else (
                RegistryError(f"token service of {self.hostname} answered "
                              f"{response.status_code}", code=Code.REGISTRY_AUTH_FAILED))
        try:
            doc = json.loads(read_body(response, MAX_TOKEN_BYTES, deadline))
            value = doc.get("token") or doc.get("access_token")
            lifetime = doc.get("expires_in", DEFAULT_TOKEN_LIFETIME_S)
        except (ValueError, AttributeError):
            value, lifetime = None, 0
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            raise RegistryError(f"token service of {self.hostname} sent no usable token",
                                code=Code.REGISTRY_AUTH_FAILED)
        # Renew a little early, so a token does not expire between the check and the request.
        return Token(value=value, lifetime_s=float(lifetime))


def _network_reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Network is unreachable", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
