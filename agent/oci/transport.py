"""The HTTP layer under :mod:`agent.oci.registry`: oras-py's :class:`~oras.provider.Registry`,
with the one method all of its HTTP goes through, ``do_request``, replaced by what an unattended
daemon needs (research/oci-sigstore.md §2.4, README "Dependencies"):

* a total deadline per operation, headers included (:mod:`agent.oci.deadline`), and a connect
  timeout (oras-py sets none and hangs on a black hole);
* a few retries with a short backoff, for reads only (oras-py retries anything 5 times, sleeping
  3-5-11-29-83 s);
* :class:`HostAuth`: Basic, or Bearer with one token per scope (oras-py keeps one token, and reads
  ``~/.docker/config.json`` and runs credential helpers, which a root daemon must not);
* redirects followed here, not by requests: at most :data:`MAX_REDIRECTS`, each target checked
  by a :data:`~agent.oci.redirects.RedirectRule` (http(s) only, never down from https, within
  the trust scope), credentials sent to the registry's own host only;
* every response streamed, and read with :func:`read_body` against a size cap.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import oras.provider  # import before anything else from oras: its modules import in a cycle
import requests
import urllib3

from agent.codes import Code
from agent.errors import RegistryError, RegistryUnreachable
from agent.oci import deadline as deadlines
from agent.oci.auth import DEFAULT_TOKEN_LIFETIME_S, Challenge, Credential, HostAuth, Token
from agent.oci.redirects import RedirectRule

MAX_TOKEN_BYTES = 64 * 1024
MAX_ERROR_BYTES = 4 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_READS = frozenset({"GET", "HEAD"})
_BACKOFF_CAP_S = 2.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
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
        if time.monotonic() >= deadline:  # the socket's own deadline (agent.oci.deadline)
            raise RegistryUnreachable(f"{response.url}: the transfer took longer than the "
                                      "timeout", hint="raise [oci] timeout_s") from None
        raise RegistryUnreachable(f"{response.url}: the transfer broke off: {exc}") from None
    finally:
        response.close()
    return b"".join(chunks)


class HostTransport(oras.provider.Registry):  # type: ignore[misc]
    """One registry host: oras-py's registry calls, over this project's ``do_request``.

    Use :meth:`operation` around each logical operation (all of its requests and body reads
    share one deadline); a request outside one gets a deadline of its own.
    """

    def __init__(self, host: str, *, auth: HostAuth, policy: HttpPolicy,
                 session: requests.Session, sleep: Callable[[float], None],
                 redirects: RedirectRule) -> None:
        super().__init__(hostname=host, insecure=host in policy.plain_http)
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = deadlines.DeadlineAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session
        self._host_auth = auth
        self._policy = policy
        self._sleep = sleep
        self._redirects = redirects
        self._deadline: float | None = None

    @contextmanager
    def operation(self) -> Iterator[float]:
        """One operation: yields its deadline, shared by every request and read inside."""
        if self._deadline is not None:  # nested: the outer operation's deadline holds
            yield self._deadline
            return
        self._deadline = time.monotonic() + self._policy.timeout_s
        try:
            with deadlines.until(self._deadline):
                yield self._deadline
        finally:
            self._deadline = None

    def do_request(  # noqa: PLR0917 -- oras-py's signature, which this method replaces
        self, url: str, method: str = "GET", data: bytes | None = None,
        headers: dict[str, str] | None = None, json: Any = None, stream: bool = False,
    ) -> requests.Response:
        """One logical request: authenticated, redirected, retried (reads only), within the
        operation's deadline.

        The response is always streamed; read it with :func:`read_body`. Raises
        :class:`RegistryUnreachable` when the registry does not answer usefully in time.
        """
        if json is not None:
            raise TypeError("send raw bytes: a manifest's digest is over its exact bytes")
        with self.operation() as deadline:
            return self._retried(url, method, data, dict(headers or {}), deadline)

    def _retried(self, url: str, method: str, data: bytes | None, headers: dict[str, str],
                 deadline: float) -> requests.Response:
        pause = self._policy.backoff_s
        for attempt in range(self._policy.retries + 1):
            try:
                response = self._follow(method, url, headers, data, deadline)
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

    def _follow(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                deadline: float) -> requests.Response:
        origin = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._authorized(method, url, dict(headers), data, deadline)
            if response.status_code not in _REDIRECTS:
                return response
            response.close()
            location = response.headers.get("Location", "")
            target = urljoin(url, location)  # _send has refused a malformed one
            why = self._redirects(url, target, method) if location else "no Location"
            if why:
                raise RegistryError(
                    f"{self.hostname} redirected {method} {_path(origin)} to {target[:200]}, "
                    f"which secprof does not follow: {why}", code=Code.REGISTRY_REDIRECT_REFUSED,
                    hint="fix the registry's redirects, or use another registry")
            if response.status_code == 303:
                method, data = "GET", None
            url = target
        raise RegistryError(
            f"{self.hostname} redirected {method} {_path(origin)} more than {MAX_REDIRECTS} "
            "times (a redirect loop?)", code=Code.REGISTRY_REDIRECT_LOOP,
            hint="fix the registry's redirects")

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              deadline: float) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout("the operation's time is up")
        timeout = (min(self._policy.connect_timeout_s, remaining), remaining)
        try:
            return self.session.request(method, url, headers=headers, data=data, stream=True,
                                        timeout=timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise RegistryError(
                f"TLS with {self.hostname} failed: {exc}", code=Code.REGISTRY_TLS,
                hint="if this registry serves plain HTTP, add it to [oci] insecure_registries",
            ) from None
        except (requests.ConnectionError, requests.Timeout):
            raise
        except (requests.RequestException, ValueError) as exc:
            # An answer requests cannot take: it parses a redirect's Location even when it does
            # not follow it, and raises ValueError for a malformed one.
            raise RegistryError(f"{_path(url)} on {self.hostname}: {type(exc).__name__}: "
                                f"{str(exc)[:200]}", code=Code.REGISTRY_PROTOCOL) from None

    def _authorized(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
                    deadline: float) -> requests.Response:
        if urlsplit(url).netloc != self.hostname:  # a redirect target: no credentials there
            return self._send(method, url, headers, data, deadline)
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


def _path(url: str) -> str:
    return urlsplit(url).path[:200]


def _network_reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Network is unreachable", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
