"""What a desired-state directory asks for: :class:`DesiredState`, and the accumulator that
builds it while files are read (:class:`Collector`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from agent.codes import Code
from agent.errors import ManifestError
from agent.model.options import LoadOptions
from agent.model.parsecache import ParseCache
from agent.model.profile import Kind, Origin, Profile, ProfileKey


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """What the directory asks for, and what in it could not be read."""

    profiles: Mapping[ProfileKey, Profile] = field(default_factory=dict)
    errors: tuple[ManifestError, ...] = ()
    key_errors: Mapping[ProfileKey, tuple[ManifestError, ...]] = field(default_factory=dict)
    file_errors: Mapping[str, tuple[ManifestError, ...]] = field(default_factory=dict)
    complete: bool = True
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # documents read but deliberately not applied, and why

    def holds(self, key: ProfileKey, source_file: str) -> bool:
        """Whether a profile last installed from ``source_file`` must be kept although it is
        not (validly) desired: its document is in error, or its file could not be read fully."""
        return (
            not self.complete or key in self.key_errors or source_file in self.file_errors
        )

    def of_kinds(self, kinds: Collection[Kind]) -> dict[ProfileKey, Profile]:
        """The valid profiles of ``kinds`` (what one driver builds)."""
        return {k: p for k, p in self.profiles.items() if k.kind in kinds}

    def invalid_names(self, kind: Kind) -> dict[str, str]:
        """Names of ``kind``'s profiles whose documents are in error, with the first error: a
        seccomp base in error fails its children clearly instead of "not found"."""
        return {k.name: e[0].message for k, e in self.key_errors.items() if k.kind is kind}


_LISTED = 5  # places named in a duplicate-profile message


@dataclass(slots=True)
class Collector:
    """Mutable accumulator used while reading; frozen into a DesiredState at the end."""

    profiles: list[Profile] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    key_errors: dict[ProfileKey, list[ManifestError]] = field(
        default_factory=lambda: defaultdict(list)
    )
    seen: dict[ProfileKey, list[Origin]] = field(default_factory=lambda: defaultdict(list))
    file_errors: dict[str, list[ManifestError]] = field(default_factory=lambda: defaultdict(list))
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cache: ParseCache | None = None
    options: LoadOptions | None = None

    def file_error(self, rel: str, error: ManifestError) -> None:
        """An error that hides which profiles the file holds (syntax, unknown identity)."""
        self.errors.append(error)
        self.file_errors[rel].append(error)

    def add(self, profile: Profile) -> None:
        self.seen[profile.key].append(profile.origin)
        self.profiles.append(profile)

    def key_error(self, key: ProfileKey, error: ManifestError) -> None:
        self.errors.append(error)
        self.key_errors[key].append(error)

    def merge(self, part: Collector) -> None:
        """Add what one file produced (``part`` is left unchanged, so it can be reused)."""
        self.profiles.extend(part.profiles)
        self.errors.extend(part.errors)
        for key, errors in part.key_errors.items():
            self.key_errors[key].extend(errors)
        for key, origins in part.seen.items():
            self.seen[key].extend(origins)
        for rel, errors in part.file_errors.items():
            self.file_errors[rel].extend(errors)
        self.files.extend(part.files)
        self.notes.extend(part.notes)

    def freeze(self, *, complete: bool = True) -> DesiredState:
        for key, origins in self.seen.items():
            if len(origins) > 1:
                # A bounded list: N copies of one name must not give N messages of N places.
                where = ", ".join(str(o) for o in origins[:_LISTED]) + (
                    f" and {len(origins) - _LISTED} more" if len(origins) > _LISTED else "")
                for origin in origins:
                    self.key_error(key, ManifestError(
                        f"{key} is defined more than once ({where}); none of them is applied",
                        file=origin.display, index=origin.index, field="metadata.name",
                        code=Code.DUPLICATE_PROFILE,
                        hint="keep exactly one document per kind and name (metadata.namespace "
                        "is part of the identity only with [seccomp] layout = \"namespaced\")",
                    ))
        profiles = {key: p for p in self.profiles if (key := p.key) not in self.key_errors}
        return DesiredState(
            profiles=dict(sorted(profiles.items())),
            errors=tuple(self.errors),
            key_errors={k: tuple(v) for k, v in sorted(self.key_errors.items())},
            file_errors={k: tuple(v) for k, v in sorted(self.file_errors.items())},
            complete=complete,
            files=tuple(self.files),
            notes=tuple(self.notes),
        )
