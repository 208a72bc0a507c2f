"""Print a debian/copyright paragraph for each Python distribution bundled in the package's venv.

Run with the venv's own interpreter (``VENV/bin/python scripts/bundled_licenses.py VENV``): it
reads the metadata of what pip really installed, so the list cannot drift from the contents.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def _license(meta: metadata.PackageMetadata) -> str:
    """A short license name: License-Expression, else License, else the classifiers'."""
    for field in ("License-Expression", "License"):
        value = (meta[field] or "").strip() if field in meta else ""
        if value and "\n" not in value and len(value) < 60:
            return value
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    return " or ".join(classifiers) or "see-license-file"


def paragraphs(venv: Path) -> str:
    """One ``Files:`` paragraph per distribution found in the venv's site-packages."""
    site = next(venv.glob("lib/python3*/site-packages"))
    out = []
    for dist in sorted(metadata.distributions(path=[str(site)]),
                       key=lambda d: d.metadata["Name"].lower()):
        name, version = dist.metadata["Name"], dist.version
        if name == "secprof":
            continue
        relative = site.relative_to(venv)
        # What the distribution installed: its top-level packages, modules and metadata.
        tops = sorted({Path(str(f)).parts[0] + ("/*" if len(Path(str(f)).parts) > 1 else "")
                       for f in dist.files or () if not str(f).startswith("..")})
        info = next((t for t in tops if t.endswith(".dist-info/*")), "")
        meta = dist.metadata
        present = [meta[f] for f in ("Author", "Author-email") if f in meta]
        author = next((a for a in present if a), f"the {name} authors").replace("\n", " ")
        out.append(
            "\nFiles: " + "\n ".join(f"usr/lib/secprof/{relative}/{t}" for t in tops) + "\n"
            f"Copyright: {author}\n"
            f"License: {_license(dist.metadata)}\n"
            f" {name} {version}, from PyPI. The license text is in\n"
            f" /usr/lib/secprof/{relative}/{info[:-2]}/.\n"
        )
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(paragraphs(Path(sys.argv[1])))
