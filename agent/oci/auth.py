"""Registry credentials and authentication challenges.

Credentials come from one docker/containers auth file: ``[oci] auth_file``, else
``$REGISTRY_AUTH_FILE``, else ``~/.docker/config.json``. The file is only read: nothing here
writes credentials anywhere (oras-py's ``login()`` writes them to ``~/.docker/config.json``, which
is why it is never called) and credential helpers are not run (a root daemon should not execute
whatever binary a config file names).

:class:`HostAuth` answers one registry's 401 challenges: ``Basic`` with the host's credential,
or ``Bearer`` with a token fetched per scope. oras-py keeps a single token and re-sends it on a
401, so a push (pull token, then pull+push) or a second repository fails; here every scope has
its own token, renewed when it expires.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.codes import Code
from agent.errors import RegistryError
from agent.oci.reference import parse_host

AUTH_FILE_ENV = "REGISTRY_AUTH_FILE"
DEFAULT_TOKEN_LIFETIME_S = 60  # what the token spec says to assume when expires_in is absent
_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        """The ``Authorization`` header value for Basic auth."""
        pair = f"{self.username}:{self.password}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"


def auth_file(configured: Path | None, environ: Mapping[str, str], home: Path
              ) -> tuple[Path, bool]:
    """The auth file to read, and whether it was named explicitly (then it must exist)."""
    if configured is not None:
        return configured, True
    if environ.get(AUTH_FILE_ENV):
        return Path(environ[AUTH_FILE_ENV]), True
    return home / ".docker" / "config.json", False


def _auth_key_host(key: str) -> str | None:
    # Keys are "host:port", or URLs such as "https://index.docker.io/v1/".
    netloc = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return parse_host(netloc)


def load_credentials(path: Path, *, explicit: bool) -> dict[str, Credential]:
    """Credentials by registry host. Messages never quote the file's content."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise RegistryError(f"registry auth file {path} does not exist",
                                code=Code.AUTH_FILE_INVALID,
                                hint="fix [oci] auth_file or $REGISTRY_AUTH_FILE") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read registry auth file {path}: {exc}",
                            code=Code.AUTH_FILE_INVALID) from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise RegistryError(f"registry auth file {path} is not valid JSON",
                            code=Code.AUTH_FILE_INVALID) from None
    auths = doc.get("auths", {}) if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        raise RegistryError(f"registry auth file {path}: \"auths\" is not an object",
                            code=Code.AUTH_FILE_INVALID)
    out: dict[str, Credential] = {}
    for key, entry in auths.items():
        host = _auth_key_host(key)
        credential = _entry_credential(entry)
        if host is None or credential is None:
            continue  # identity tokens, helper-only entries: not ours to interpret
        out[host] = credential
    return out


def _entry_credential(entry: Any) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode(
            ).partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Credential(user, password) if sep else None
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str) and name:
        return Credential(name, secret)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercased
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenge(header: str) -> Challenge | None:
    """A ``WWW-Authenticate`` header, or ``None`` when it is missing or not Basic/Bearer."""
    scheme, _, params = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    values = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM_RE.finditer(params)}
    return Challenge(scheme=scheme, realm=values.get("realm", ""),
                     service=values.get("service", ""), scope=values.get("scope", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    value: str
    lifetime_s: float


# (realm, service, scope) → a token; the HTTP request is the registry client's.
TokenFetcher = Callable[[Challenge, "Credential | None"], Token]


class HostAuth:
    """Authentication state for one registry host: the scheme it asked for, tokens by scope."""

    def __init__(self, host: str, credential: Credential | None, *, plain_http: bool,
                 clock: Callable[[], float]) -> None:
        self.host = host
        self.credential = credential
        self._plain_http = plain_http
        self._clock = clock
        self._scheme = ""
        self._tokens: dict[str, tuple[str, float]] = {}  # scope → (token, expires at)

    def header(self, scope: str) -> str | None:
        """What to send before being asked: what worked for this host and scope last time."""
        if self._scheme == "basic" and self.credential is not None:
            return self.credential.basic()
        token, expires_at = self._tokens.get(scope, ("", 0.0))
        if self._scheme == "bearer" and token and self._clock() < expires_at:
            return f"Bearer {token}"
        return None

    def answer(self, header: str, scope: str, fetch_token: TokenFetcher) -> str:
        """The ``Authorization`` value answering a 401 with ``header``; raises RegistryError."""
        challenge = parse_challenge(header)
        if challenge is None:
            raise RegistryError(f"registry {self.host} asks for authentication it does not "
                                "name (no Basic or Bearer challenge)",
                                code=Code.REGISTRY_AUTH_FAILED)
        self._scheme = challenge.scheme
        if challenge.scheme == "basic":
            if self.credential is None:
                raise self.required()
            return self.credential.basic()
        realm = urlsplit(challenge.realm)
        if realm.scheme not in ("https", "http") or not realm.netloc or (
            realm.scheme == "http" and not self._plain_http
        ):
            raise RegistryError(
                f"registry {self.host} names token realm {challenge.realm!r}; secprof only "
                "fetches tokens over HTTPS (HTTP only for registries in insecure_registries)",
                code=Code.REGISTRY_AUTH_FAILED,
            )
        asked = Challenge(scheme="bearer", realm=challenge.realm, service=challenge.service,
                          scope=challenge.scope or scope)
        token = fetch_token(asked, self.credential)
        # Renewed a little early, so that it does not expire between the check and the request.
        self._tokens[scope] = (token.value, self._clock() + max(token.lifetime_s - 5, 0))
        return f"Bearer {token.value}"

    def forget(self, scope: str) -> None:
        """Drop the token for ``scope`` (the registry refused it)."""
        self._tokens.pop(scope, None)

    def required(self) -> RegistryError:
        return RegistryError(
            f"registry {self.host} requires authentication and there are no credentials for it",
            code=Code.REGISTRY_AUTH_REQUIRED,
            hint="add the registry to the auth file ([oci] auth_file, $REGISTRY_AUTH_FILE or "
            "~/.docker/config.json), or pass -u USER with $PASSWORD",
        )

    def rejected(self) -> RegistryError:
        who = f"user {self.credential.username!r}" if self.credential else "anonymous access"
        return RegistryError(
            f"registry {self.host} rejected the credentials of {who}",
            code=Code.REGISTRY_AUTH_FAILED, hint="check the username and password in the auth file",
        )
