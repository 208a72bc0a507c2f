"""How documents are read on this host: what Docker templates are flattened for, and whether
``metadata.namespace`` is part of a profile's identity (SPO v0.8's layout)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.model.docker_format import TemplateHost, host_template


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    """``namespaced``: a document's identity is ``<namespace>/<name>`` (``default`` when it has
    none, as kubectl would place it), installed as ``<subdir>/<namespace>/<name>.json``;
    otherwise the namespace is ignored, as SPO has done since profiles became cluster-scoped."""

    template: TemplateHost = field(default_factory=host_template)
    namespaced: bool = False

    def fingerprint(self) -> bytes:
        """Bytes that change whenever parsing the same file could give another result."""
        return self.template.fingerprint() + (b";ns" if self.namespaced else b";flat")


DEFAULT_NAMESPACE = "default"
