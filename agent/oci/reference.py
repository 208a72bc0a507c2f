"""OCI references and trust scopes, parsed by our own rules (DESIGN §6).

``oci://host[:port]/repository[:tag][@sha256:<hex>]``. The first path element is always the
registry: oras-py (and Docker) guess, and read ``localhost/p/x`` as Docker Hub's ``localhost/p``
repository, which would send a request (and credentials) to the wrong host. Host names are
case-insensitive and are lowercased; repository names must already be lowercase (registries
refuse anything else, and silently lowercasing would name a different artifact). A digest wins
over a tag: the tag is kept only to show where the digest came from. Without either, the tag is
``latest``, as in Docker and SPO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from agent.codes import Code
from agent.errors import ResolveError
from agent.model.seccomp import OCI_PREFIX

DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255  # registry/repository, as the distribution spec bounds it

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
FORM = "oci://host[:port]/repository[:tag][@sha256:<64 hex digits>]"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A parsed, normalised reference; ``str()`` gives its canonical ``oci://`` form."""

    registry: str  # host[:port], lowercase
    repository: str
    tag: str = ""  # "" when only a digest was given
    digest: str = ""  # "sha256:<hex>", or "" when only a tag was given

    @property
    def name(self) -> str:
        """``registry/repository``: what trust scopes and credentials are matched against."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What the registry is asked for: the digest when there is one, else the tag."""
        return self.digest or self.tag

    def pinned(self, digest: str) -> Reference:
        """The same reference, resolved to ``digest``."""
        return replace(self, digest=digest)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{OCI_PREFIX}{self.name}{tag}{digest}"


def _invalid(text: str, why: str) -> ResolveError:
    return ResolveError(f"{text!r} is not a valid OCI reference: {why}",
                        code=Code.REFERENCE_INVALID, hint=f"write {FORM}")


def parse_host(host: str) -> str | None:
    """``host[:port]`` lowercased, or ``None`` when it is not one."""
    lowered = host.lower()
    match = _HOST_RE.match(lowered)
    if not match:
        return None
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return lowered


def _repository_problem(path: str) -> str | None:
    """Why ``path`` is not a repository name, or ``None``."""
    if not path:
        return "the repository is missing after the registry host"
    for component in path.split("/"):
        if not _COMPONENT_RE.match(component):
            if _COMPONENT_RE.match(component.lower()):
                return f"repository names must be lowercase ({component!r})"
            return (f"{component!r} is not a repository path component (lowercase letters and "
                    "digits, separated by '.', '_', '__' or dashes)")
    return None


def parse(text: str, *, require_scheme: bool = True) -> Reference:
    """Parse ``text``; without ``require_scheme`` the ``oci://`` prefix is optional (CLI)."""
    if text.startswith(OCI_PREFIX):
        rest = text[len(OCI_PREFIX):]
    elif require_scheme:
        raise _invalid(text, f"it must start with {OCI_PREFIX}")
    else:
        rest = text
    rest, _, digest = rest.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise _invalid(text, f"{digest!r} is not a sha256 digest (only sha256 is supported, "
                       "as 'sha256:' and 64 lowercase hex digits)")
    host_text, slash, path = rest.partition("/")
    if not slash:
        raise _invalid(text, "it needs a registry host and a repository")
    host = parse_host(host_text)
    if host is None:
        raise _invalid(text, f"{host_text!r} is not a registry host[:port]")
    # A ':' after the last '/' starts the tag; one before it would be part of a path component.
    last_slash = path.rfind("/")
    colon = path.find(":", last_slash + 1)
    tag = ""
    if colon >= 0:
        path, tag = path[:colon], path[colon + 1:]
        if not _TAG_RE.match(tag):
            raise _invalid(text, f"{tag!r} is not a tag (letters, digits, '_', '.', '-'; at "
                           "most 128, not starting with '.' or '-')")
    problem = _repository_problem(path)
    if problem:
        raise _invalid(text, problem)
    if len(host) + 1 + len(path) > MAX_NAME_LENGTH:
        raise _invalid(text, f"registry and repository are longer than {MAX_NAME_LENGTH} "
                       "characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(registry=host, repository=path, tag=tag, digest=digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """A registry, or a repository prefix inside one: what a ``[[trust]]`` entry covers."""

    registry: str
    repository: str = ""  # "" covers the whole registry

    def covers(self, ref: Reference) -> bool:
        """Whether ``ref`` lies inside this scope; prefixes match whole path components only,
        so ``reg/profiles`` covers ``reg/profiles/x`` but never ``reg/profiles-evil``."""
        if ref.registry != self.registry:
            return False
        if not self.repository:
            return True
        return ref.repository == self.repository or ref.repository.startswith(
            f"{self.repository}/"
        )

    @property
    def specificity(self) -> int:
        """Longer prefixes win; the registry alone is the least specific."""
        return 0 if not self.repository else 1 + self.repository.count("/")

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" if self.repository else self.registry


def parse_scope(text: str) -> Scope:
    """``host[:port][/repository/prefix]`` (no scheme, tag or digest); raises ValueError."""
    if text.startswith(OCI_PREFIX) or "@" in text:
        raise ValueError("write host[:port][/repository] without oci://, tag or digest")
    host_text, _, path = text.partition("/")
    host = parse_host(host_text)
    if host is None:
        raise ValueError(f"{host_text!r} is not a registry host[:port]")
    if not path:
        return Scope(registry=host)
    repository = path.rstrip("/")
    problem = _repository_problem(repository)
    if problem:
        raise ValueError(problem)
    return Scope(registry=host, repository=repository)
