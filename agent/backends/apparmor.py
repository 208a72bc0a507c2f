"""AppArmor backend: ``<profiles_dir>/secprof.<name>`` files, compiled or loaded by one
``apparmor_parser`` call per batch.

An install is staged under the state dir, its declared names are checked (``-N``, one call for
the batch; skipped for text that has the rendered-abstract shape, which declares one profile by
construction), then every staged file goes through one parser call: ``--replace`` into the
kernel (load), or ``-Q -K`` (compile-only). Only what passed is written to ``profiles_dir`` (so
that ``apparmor.service`` loads it at boot); a failed batch is split until each failing file is
found, and the others go on. A failed update keeps the last good file and the loaded profile.

Ownership: ``<state>/owned/secprof.<name>`` is written before a profile is first loaded and
removed after it is unloaded. A name the kernel lists without that record (``docker-default``,
the distribution's profiles) is never replaced, shadowed or unloaded.

Removal unloads only a profile no process runs under (``/proc/<pid>/attr``); until then it is
refused with the PIDs, and the reconciler retries at each resync.
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agent.backends import apparmor_parser as ap
from agent.backends.base import Availability, Batch, Install, Probe, Result
from agent.backends.runner import Runner, RunResult, failure
from agent.codes import Code
from agent.errors import AgentError, BackendError
from agent.fsutil import atomic_write, confined, ensure_dir, fsync_dir, name_problem, read_bytes
from agent.fsutil import sha256_hex as digest
from agent.model.profile import ProfileKey

PREFIX = "secprof."
_ABI4_HINT = ("the policy uses AppArmor 4 syntax; it needs apparmor_parser 4 or later "
              "(apparmor_parser --version shows this host's)")


class Mode(StrEnum):
    AUTO = "auto"
    LOAD = "load"
    COMPILE_ONLY = "compile-only"
    OFF = "off"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppArmorSettings:
    """Where everything is; tests point every path at a tmp dir."""

    mode: Mode = Mode.AUTO
    profiles_dir: Path = Path("/etc/apparmor.d")
    securityfs: Path = Path("/sys/kernel/security/apparmor")
    kernel_features: Path | None = None
    state_dir: Path = Path("/var/lib/secprof/apparmor")  # ownership records, staging
    cache_dir: Path = Path("/var/cache/secprof/apparmor")  # the parser's compiled cache
    proc_root: Path = Path("/proc")
    enabled_file: Path = Path("/sys/module/apparmor/parameters/enabled")
    parser: str = "apparmor_parser"
    timeout_s: float = 60.0  # per call, plus 2 s per file in it


class AppArmorBackend:
    """The :class:`~agent.backends.base.Backend` of AppArmorProfiles (see the module's
    docstring); every parser call goes through ``runner``."""

    def __init__(self, settings: AppArmorSettings, runner: Runner) -> None:
        self._s = settings
        self._runner = runner
        self._owned = settings.state_dir / "owned"
        self._staging = settings.state_dir / "staging"
        # digest → where its text came from; the driver describes each build here.
        self.sources: dict[str, ap.Source] = {}

    # --- what and where -----------------------------------------------------------------

    def path(self, key: ProfileKey) -> Path:
        """``<profiles_dir>/secprof.<name>``, after checking the name."""
        problem = name_problem(key.name)
        if problem:  # the loader already refused it; this is the second fence
            raise BackendError(f"refusing to build a path from name {key.name!r}: {problem}")
        return confined(self._s.profiles_dir, PREFIX + key.name)

    def location(self, key: ProfileKey) -> str:
        return str(self.path(key))

    def probe(self) -> Probe:
        """Which mode applies here, and why; reads two small files, runs nothing."""
        s = self._s
        if s.mode is Mode.OFF:
            return Probe(availability=Availability.UNAVAILABLE, reason="[apparmor] mode = off")
        if shutil.which(s.parser) is None:
            return Probe(availability=Availability.UNAVAILABLE,
                         reason=f"{s.parser} is not installed (Debian: apt install apparmor)")
        kernel = self._kernel_problem()
        where = f"compiled with {s.parser} and written to {s.profiles_dir} for the next boot"
        if s.mode is Mode.COMPILE_ONLY:
            return Probe(availability=Availability.COMPILE_ONLY,
                         reason=f"[apparmor] mode = compile-only: profiles are {where}, not loaded")
        if kernel is None:
            return Probe(availability=Availability.INSTALLED)
        if s.mode is Mode.LOAD:
            return Probe(availability=Availability.UNAVAILABLE,
                         reason=f"[apparmor] mode = load, but {kernel}")
        return Probe(availability=Availability.COMPILE_ONLY,
                     reason=f"{kernel}: profiles are {where}, not loaded ([apparmor] mode = auto)")

    def _kernel_problem(self) -> str | None:
        """Why profiles cannot be loaded here, or ``None``. In ``load`` mode only the
        interface is checked (a test's fake securityfs stands in for the kernel)."""
        s = self._s
        if s.mode is Mode.AUTO:
            try:
                enabled = s.enabled_file.read_text().strip()
            except OSError:
                return f"the kernel has no AppArmor ({s.enabled_file} is missing)"
            if enabled != "Y":
                return f"AppArmor is disabled in this kernel ({s.enabled_file} says {enabled})"
        if not (s.securityfs / ".replace").exists():
            return f"the AppArmor interface {s.securityfs} is not mounted"
        return None

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        """The digest of each profile file; ``None`` when it is gone, or (when loading) when the
        kernel no longer lists the profile in its mode. Runs no parser."""
        loading = self.probe().availability is Availability.INSTALLED
        kernel = ap.kernel_profiles(self._s.securityfs) if loading else {}
        out: dict[ProfileKey, str | None] = {}
        for key in keys:
            data = read_bytes(self.path(key))
            if data is not None and loading and not self._listed(kernel, key.name, data):
                data = None
            out[key] = None if data is None else digest(data)
        return out

    @staticmethod
    def _listed(kernel: Mapping[str, str], name: str, content: bytes) -> bool:
        mode = ap.declared_mode(content, name)
        return name in kernel and (mode is None or kernel[name] == mode)

    # --- apply ------------------------------------------------------------------------------

    def apply(self, batch: Batch) -> list[Result]:
        """Installs through one parser call (after one ``-N`` call when a raw policy is among
        them), removals through one ``--remove`` call; one result per key."""
        probe = self.probe()
        keys = [i.key for i in batch.installs] + list(batch.removals)
        if probe.availability is Availability.UNAVAILABLE:
            error = BackendError(probe.reason, code=Code.BACKEND_UNAVAILABLE)
            return [Result(key=key, error=error) for key in keys]
        loading = probe.availability is Availability.INSTALLED
        results: dict[ProfileKey, Result] = {}
        if batch.installs:
            results.update(self._install(batch.installs, loading=loading))
        if batch.removals:
            results.update(self._remove(batch.removals, loading=loading))
        return [results[key] for key in keys]

    def _install(self, installs: Sequence[Install], *, loading: bool
                 ) -> dict[ProfileKey, Result]:
        for directory in (self._owned, self._staging, self._s.profiles_dir):
            ensure_dir(directory, 0o700 if directory != self._s.profiles_dir else 0o755)
        if loading:
            ensure_dir(self._s.cache_dir, 0o700)
        kernel = ap.kernel_profiles(self._s.securityfs) if loading else {}
        errors: dict[ProfileKey, AgentError] = {}
        staged: dict[ProfileKey, Install] = {}
        for install in installs:
            key = install.key
            if loading and key.name in kernel and not self._owns(key):
                errors[key] = BackendError(
                    f"a profile named {key.name!r} is already loaded and secprof did not load "
                    "it; it is never replaced", code=Code.PROFILE_NOT_OWNED,
                    hint="rename the AppArmorProfile, or unload the other profile first")
                continue
            _scratch(self._staged(key), install.content)
            staged[key] = install
        # Imported here: it brings the AppArmor model, which a host without AppArmorProfiles
        # never needs (the backend is built, and probed, on every host).
        from agent.apparmor.render import declares_only  # noqa: PLC0415

        try:
            errors.update(self._check_names([i for i in staged.values()
                                             if not declares_only(i.content, i.key.name)]))
        except BackendError as exc:  # the parser is missing or hung: nothing goes further
            errors.update(dict.fromkeys(staged, exc))
        ready = {k: i for k, i in staged.items() if k not in errors}
        previous = {k: read_bytes(self._owned_path(k)) for k in ready}
        for key, install in ready.items():  # claim the name before it reaches the kernel
            _record(self._owned_path(key), install.content)
        if ready:
            fsync_dir(self._owned)
        try:
            errors.update(self._compile(list(ready), loading=loading))
        except BackendError as exc:
            errors.update(dict.fromkeys(ready, exc))
        if loading:
            errors.update(self._verify_loaded({k: i for k, i in ready.items() if k not in errors}))
        results: dict[ProfileKey, Result] = {}
        for install in installs:
            key = install.key
            if key in errors:
                if key in previous:
                    self._restore_owned(key, previous[key])
                results[key] = Result(key=key, error=errors[key])
                continue
            path = self.path(key)
            try:
                atomic_write(path, install.content, mode=0o644, sync_dir=False)
            except OSError as exc:
                results[key] = Result(key=key, error=BackendError(
                    f"cannot write {path}: {exc.strerror or exc}", code=Code.WRITE_FAILED))
                continue
            results[key] = Result(key=key, changed=True)
        fsync_dir(self._s.profiles_dir)
        for key in staged:
            with contextlib.suppress(FileNotFoundError):
                self._staged(key).unlink()
        return results

    def _restore_owned(self, key: ProfileKey, old: bytes | None) -> None:
        if old is None:
            with contextlib.suppress(FileNotFoundError):
                self._owned_path(key).unlink()
        else:
            _record(self._owned_path(key), old)

    def _check_names(self, installs: Sequence[Install]) -> dict[ProfileKey, AgentError]:
        """Each text must declare exactly one top-level profile, named as its manifest: one
        ``-N`` call for all; only when it disagrees, one per file to find which.

        ``-N`` prints the batch's names sorted, not per file, so the batch check compares
        multisets. The one case it cannot tell apart (a file declaring its own name and another
        file's, that other file declaring none) still loads only names of this batch, all
        secprof's: no foreign name can pass."""
        if not installs:
            return {}
        done = self._run(["-N", *(str(self._staged(i.key)) for i in installs)], len(installs))
        expected = Counter(i.key.name for i in installs)
        if done.ok and Counter(ap.top_names(done.stdout)) == expected:
            return {}
        errors: dict[ProfileKey, AgentError] = {}
        for install in installs:
            key = install.key
            one = self._run(["-N", str(self._staged(key))], 1)
            names = ap.top_names(one.stdout)
            if not one.ok:
                errors[key] = self._parse_error(key, install, one)
            elif names != [key.name]:
                declared = ", ".join(names) or "no profile"
                errors[key] = BackendError(
                    f"the policy must declare exactly one profile, named {key.name!r} "
                    f"(metadata.name); it declares {declared}", code=Code.PROFILE_NAME_MISMATCH,
                    hint="apparmor_parser -N shows the names a policy declares")
        return errors

    def _compile(self, keys: list[ProfileKey], *, loading: bool) -> dict[ProfileKey, AgentError]:
        """One parser call for ``keys``; when it fails, the files its errors name fail and the
        rest is tried again, split in halves while a failure names no file."""
        if not keys:
            return {}
        done = self._run(self._compile_args(loading) + [str(self._staged(k)) for k in keys],
                         len(keys))
        if done.ok:
            return {}
        if len(keys) == 1:
            return {keys[0]: self._parse_error(keys[0], None, done)}
        by_file = {str(self._staged(k)): k for k in keys}
        by_name = {k.name: k for k in keys}
        named = {by_file[m.file] for m in ap.messages(done.stderr) if m.file in by_file}
        named |= {by_name[n] for n in ap.unable(done.stderr) if n in by_name}
        errors: dict[ProfileKey, AgentError] = {}
        if named:
            errors.update({key: self._parse_error(key, None, done) for key in named})
            errors.update(self._compile([k for k in keys if k not in named], loading=loading))
            return errors
        half = len(keys) // 2
        errors.update(self._compile(keys[:half], loading=loading))
        errors.update(self._compile(keys[half:], loading=loading))
        return errors

    def _compile_args(self, loading: bool) -> list[str]:
        s = self._s
        features = ["--kernel-features", str(s.kernel_features)] if s.kernel_features else []
        if not loading:
            return ["-Q", "-K", *features]
        return ["--replace", "--write-cache", "--cache-loc", str(s.cache_dir),
                "--subdomainfs", str(s.securityfs), *features]

    def _verify_loaded(self, loaded: Mapping[ProfileKey, Install]) -> dict[ProfileKey, AgentError]:
        """After a load the kernel must list every profile in the mode its text declares."""
        kernel = ap.kernel_profiles(self._s.securityfs)
        errors: dict[ProfileKey, AgentError] = {}
        for key, install in loaded.items():
            if not self._listed(kernel, key.name, install.content):
                shown = kernel.get(key.name)
                errors[key] = BackendError(
                    f"apparmor_parser loaded {key.name!r} but {self._s.securityfs}/profiles "
                    + (f"lists it in {shown} mode" if shown else "does not list it"),
                    code=Code.LOAD_UNVERIFIED)
        return errors

    def _parse_error(self, key: ProfileKey, install: Install | None,
                     done: RunResult) -> AgentError:
        """The parser's complaint about one file, shown against the manifest field."""
        content = install.content if install else read_bytes(self._staged(key)) or b""
        source = self.sources.get(digest(content))
        for message in ap.messages(done.stderr):
            if message.file != str(self._staged(key)):
                continue
            return failure(ap.located(message, source) + message.what, done,
                           code=Code.POLICY_INVALID, hint=_ABI4_HINT if b"abi/4" in content else "")
        reason = ap.unable(done.stderr).get(key.name)
        if reason:
            return failure(f"the kernel refused {key.name!r}: {reason}", done,
                           code=Code.PROFILE_LOAD_FAILED)
        return failure(f"apparmor_parser failed (exit {done.returncode}): "
                       f"{ap.tail(done.stderr) or 'no message'}", done, code=Code.POLICY_INVALID)

    # --- remove -----------------------------------------------------------------------------

    def _remove(self, keys: Sequence[ProfileKey], *, loading: bool) -> dict[ProfileKey, Result]:
        kernel = ap.kernel_profiles(self._s.securityfs) if loading else {}
        loaded = [k for k in keys if k.name in kernel]
        results: dict[ProfileKey, Result] = {}
        foreign = [k for k in loaded if not self._owns(k)]
        for key in foreign:
            results[key] = Result(key=key, error=BackendError(
                f"{key.name!r} is loaded but secprof did not load it; it is not unloaded",
                code=Code.PROFILE_NOT_OWNED))
        pids = ap.confined_pids(self._s.proc_root, [k.name for k in loaded if k not in foreign])
        for key in loaded:
            running = pids.get(key.name)
            if running and key not in results:
                shown = ", ".join(map(str, running[:20])) + (" …" if len(running) > 20 else "")
                results[key] = Result(key=key, error=BackendError(
                    f"still confining PIDs {shown}: unloading would leave them unconfined; "
                    "retried at each resync", code=Code.PROFILE_IN_USE))
        unload = [k for k in loaded if k not in results]
        results.update(self._unload(unload))
        for key in keys:
            if key not in results:
                results[key] = self._delete(key, unloaded=key in unload)
        return results

    def _unload(self, keys: Sequence[ProfileKey]) -> dict[ProfileKey, Result]:
        """``apparmor_parser -R`` of stubs that declare only the names: the files on disk may
        have been edited, and must not decide what is unloaded."""
        if not keys:
            return {}
        ensure_dir(self._staging, 0o700)
        for key in keys:
            _scratch(self._staged(key), f"profile {key.name} {{\n}}\n".encode())
        s = self._s
        features = ["--kernel-features", str(s.kernel_features)] if s.kernel_features else []
        try:
            done = self._run(["--remove", "--subdomainfs", str(s.securityfs), *features,
                              *(str(self._staged(k)) for k in keys)], len(keys))
        except BackendError as exc:
            return {k: Result(key=k, error=exc) for k in keys}
        finally:
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    self._staged(key).unlink()
        if done.ok:
            return {}
        refused = ap.unable(done.stderr)
        error = failure(f"apparmor_parser --remove failed: {ap.tail(done.stderr)}", done,
                        code=Code.REMOVE_FAILED)
        return {k: Result(key=k, error=error) for k in keys if not refused or k.name in refused}

    def _delete(self, key: ProfileKey, *, unloaded: bool) -> Result:
        changed = unloaded
        for path in (self.path(key), self._owned_path(key)):
            try:
                path.unlink()
                changed = True
            except FileNotFoundError:
                pass
            except OSError as exc:
                return Result(key=key, error=BackendError(
                    f"cannot remove {path}: {exc.strerror or exc}", code=Code.REMOVE_FAILED))
        return Result(key=key, changed=changed)

    # --- helpers ----------------------------------------------------------------------------

    def _owns(self, key: ProfileKey) -> bool:
        return self._owned_path(key).exists()

    def _owned_path(self, key: ProfileKey) -> Path:
        self.path(key)  # the name check
        return confined(self._owned, PREFIX + key.name)

    def _staged(self, key: ProfileKey) -> Path:
        """Same basename as the installed file: the parser's messages and cache use it."""
        self.path(key)
        return confined(self._staging, PREFIX + key.name)

    def _run(self, args: list[str], files: int) -> RunResult:
        return self._runner.run([self._s.parser, *args],
                                timeout_s=self._s.timeout_s + 2.0 * files)


def _scratch(path: Path, data: bytes) -> None:
    """A staged file: private, read once by the next parser call, never needed after a crash
    (no fsync: a batch of 100 would otherwise pay 100 disk flushes for nothing)."""
    with open(path, "wb") as fh:
        fh.write(data)


def _record(path: Path, data: bytes) -> None:
    """An ownership record: renamed into place (never torn). Its existence is what counts, made
    durable by the one directory fsync of its batch rather than one flush per file."""
    tmp = path.with_name(f".{path.name}.tmp")
    _scratch(tmp, data)
    tmp.replace(path)
