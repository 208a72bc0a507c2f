"""Names of profiles that do not come from a Kubernetes object: plain JSON files.

kubelet takes ``localhostProfile`` as a path under its seccomp root, so any file name can be
referenced; secprof keeps letters, digits, ``.``, ``_`` and ``-`` (no leading dot, at most 253),
which covers the names people use (``my_profile.json``, ``Chrome.json``) and never builds a
surprising path. SPO documents keep Kubernetes' stricter rule (:func:`agent.fsutil.name_problem`).
"""

from __future__ import annotations

import re

_PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$")


def plain_name_problem(name: str) -> str:
    """Why a plain JSON file's name (without ``.json``) cannot name a profile, or ``""``."""
    if _PLAIN_NAME_RE.match(name) and ".." not in name:
        return ""
    return (f"{name!r} is not usable (letters, digits, '.', '_' and '-' only, at most 253, "
            "not starting with '.' or '-', no '..')")


def rename_hint(name: str) -> str:
    """The rename that makes ``name`` usable."""
    fixed = re.sub(r"[^A-Za-z0-9._-]+", "-", name).replace("..", ".").lstrip(".-")[:253]
    return f"rename the file to {fixed or 'profile'}.json"


def key_path_problem(name: str) -> str:
    """Why a profile key's name cannot become a path under the seccomp subdir, or ``""``: one
    plain name, or ``<namespace>/<name>`` (SPO v0.8's layout)."""
    parts = name.split("/")
    if len(parts) > 2:
        return f"{name!r} has more than one '/'"
    for part in parts:
        problem = plain_name_problem(part)
        if problem:
            return problem
    return ""
