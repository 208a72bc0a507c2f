"""The one registry of error codes: each stable code, what it means, and the exit code it gives.

Every :class:`agent.errors.AgentError` carries one of these codes (logs' ``ERROR_CODE``, the
``secprof_errors_total{code}`` metric, the status API's ``errorCode`` and ``error.code``,
``--json`` output). They are a contract: never reuse one for a different meaning, never rename
one. Code raises and compares them as members (``code=Code.BASE_NOT_FOUND``), so a typo is an
``AttributeError`` at import, not a silently new code; ``tests/unit/test_codes.py`` checks that
every code written anywhere in ``agent/`` is registered here and that every entry is used, and
the README's table is generated from this module (``scripts/error_codes.py``).

``exit_code`` is what a CLI command exits with when an error with that code ends it; only
:mod:`agent.cli.main` applies it (:func:`exit_status`).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Exit(IntEnum):
    """The exit codes of ``secprof`` (sysexits.h numbers where one fits)."""

    OK = 0
    ERROR = 1  # the command ran; some profile or input is in error
    USAGE = 2
    UNAVAILABLE = 69  # EX_UNAVAILABLE: the daemon cannot be reached
    SOFTWARE = 70  # EX_SOFTWARE: a bug in secprof
    CONFIG = 78  # EX_CONFIG


class Code(StrEnum):
    """A stable kebab-case error code, with its one-line ``meaning`` and CLI ``exit_code``."""

    _value_: str
    meaning: str
    exit_code: Exit

    def __new__(cls, value: str, meaning: str, exit_code: Exit = Exit.ERROR) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.exit_code = exit_code
        return member

    # The defaults of the error tree (agent/errors.py).
    AGENT_ERROR = "agent-error", "an error with no more specific code"
    USAGE = "usage", "the command line is malformed", Exit.USAGE
    CONFIG_INVALID = "config-invalid", "the config file is unreadable or invalid", Exit.CONFIG
    MANIFEST_INVALID = "manifest-invalid", ("a desired-state document, or an OCI artifact's "
                                            "manifest, is invalid (file, index and field named)")
    RESOLVE_FAILED = "resolve-failed", "a seccomp base chain cannot be resolved"
    PROFILE_INVALID = "profile-invalid", "a merged profile is rejected"
    REGISTRY_ERROR = "registry-error", "an OCI registry answered with an unexpected status"
    REGISTRY_UNREACHABLE = "registry-unreachable", ("an OCI registry cannot be reached "
                                                    "(network, timeout, 429/5xx after retries)")
    SIGNING_FAILED = "signing-failed", ("an artifact cannot be signed or its signature "
                                        "logged (signing services, transparency log)")
    BACKEND_FAILED = "backend-failed", "a host mutation failed"
    API_ERROR = "api-error", "the daemon refused a request without naming a reason"
    DAEMON_UNAVAILABLE = ("daemon-unavailable", "the CLI cannot reach the daemon's socket",
                          Exit.UNAVAILABLE)

    # Reading the desired-state directory (agent/model).
    DIRECTORY_UNREADABLE = "directory-unreadable", ("the desired-state directory cannot be read "
                                                    "or watched; everything installed is held")
    SYMLINK_ESCAPES = "symlink-escapes", "a symlink points outside the desired-state directory"
    FILE_UNREADABLE = "file-unreadable", "a manifest file cannot be read, or is not UTF-8"
    FILE_TOO_LARGE = "file-too-large", "a manifest file is over the size cap"
    SYNTAX_ERROR = "syntax-error", "a manifest file is not valid YAML or JSON"
    NAME_INVALID = "name-invalid", ("a profile name is not lowercase letters, digits, "
                                    "'-' and '.'")
    KIND_UNSUPPORTED = "kind-unsupported", ("this version has no parser or no backend for the "
                                            "document's kind")
    DUPLICATE_PROFILE = "duplicate-profile", ("two documents define the same kind and name; "
                                              "none of them is applied")
    PARSE_FAILED = "parse-failed", ("reading a manifest file met an internal error (a bug; see "
                                    "the log); only that file fails")
    MANIFEST_UNREADABLE = "manifest-unreadable", ("the file that defined an installed profile "
                                                  "cannot be read now; the profile is held")
    LIST_NESTED = "list-nested", "a kind: List document inside another List's items"
    TEMPLATE_IN_SPEC = "template-in-spec", ("a SeccompProfile spec uses Docker's template format "
                                            "(archMap, includes…): use a plain .json file")
    RULE_CONFLICT = "rule-conflict", ("two rules of one seccomp profile give one syscall and "
                                      "the same arguments different actions (runc refuses it)")

    # Seccomp: base chains, libseccomp.
    BASE_CYCLE = "base-cycle", "a seccomp base chain has a cycle"
    BASE_DEPTH = "base-depth", "a seccomp base chain is longer than max_base_depth"
    BASE_INVALID = "base-invalid", "a seccomp profile's base is itself invalid"
    BASE_NOT_FOUND = "base-not-found", "a seccomp profile's base is not in the desired state"
    OCI_UNSUPPORTED = "oci-unsupported", "an oci:// base where the command does not fetch any"
    BUILD_FAILED = "build-failed", ("building a profile met an internal error (a bug; see the "
                                    "log); only that profile fails")
    LIBSECCOMP_MISSING = "libseccomp-missing", "libseccomp cannot be loaded"
    LIBSECCOMP_REJECTED = "libseccomp-rejected", ("libseccomp (as runc uses it) refuses to "
                                                  "compile the merged profile")
    NOTIFY_WITHOUT_LISTENER = "notify-without-listener", ("SCMP_ACT_NOTIFY is used but the "
                                                          "profile names no listenerPath")
    BPF_TOO_LARGE = "bpf-too-large", ("the merged profile compiles to more BPF instructions "
                                      "than the kernel loads (BPF_MAXINSNS, 4096)")

    # Backends: host mutations.
    WRITE_FAILED = "write-failed", "a profile file cannot be written"
    REMOVE_FAILED = "remove-failed", "a profile file cannot be removed"
    BACKEND_UNAVAILABLE = "backend-unavailable", ("the backend of the profile's kind cannot run "
                                                  "on this host (the message says why)")
    UNSAFE_DIRECTORY = "unsafe-directory", ("a symlink or a non-directory stands where "
                                            "secprof's own directory goes; nothing is written "
                                            "through it")
    UNSAFE_TARGET = "unsafe-target", ("something other than a regular file (symlink, FIFO, "
                                      "device, directory) stands where a profile goes")

    # The state directory: the one-writer lock, the ledger and its intent journal.
    STATE_LOCKED = "state-locked", ("another secprof process held the state lock longer than "
                                    "this one waits (the message names its pid)")
    STATE_UNWRITABLE = "state-unwritable", ("the state directory cannot be written (full, "
                                            "read-only); nothing unrecorded is changed")
    LEDGER_REBUILT = "ledger-rebuilt", ("the ledger was unreadable; it was moved aside and "
                                        "rebuilt from secprof's own directories (logged)")
    TOOL_MISSING = "tool-missing", "a program a backend runs is not installed or not runnable"
    TOOL_TIMEOUT = "tool-timeout", "a program a backend runs did not finish in time and was killed"
    PROFILE_IN_USE = "profile-in-use", ("removal waits: processes still run under the profile "
                                        "(state Removing, retried at each resync)")

    # AppArmor (apparmor_parser and the kernel's interface).
    POLICY_INVALID = "policy-invalid", ("apparmor_parser rejects the policy (its message, line "
                                        "and the manifest field are shown)")
    PROFILE_NAME_MISMATCH = "profile-name-mismatch", ("the policy does not declare exactly one "
                                                      "profile named as metadata.name")
    PROFILE_NOT_OWNED = "profile-not-owned", ("a profile of that name is loaded and secprof did "
                                              "not load it: never replaced or unloaded")
    PROFILE_LOAD_FAILED = "profile-load-failed", "the kernel refused to load the profile"
    LOAD_UNVERIFIED = "load-unverified", ("after loading, the kernel does not list the profile "
                                          "in the mode its text declares")

    # SELinux: rendering CIL (agent/selinux) and semodule (agent/backends/selinux.py).
    SELINUX_NAME_INVALID = "selinux-name-invalid", ("an SELinux profile's name cannot be a CIL "
                                                    "block (a letter first; letters, digits, '-')")
    SELINUX_DENIED = "selinux-denied", ("a SelinuxProfile allows a type, class or permission on "
                                        "SPO's deny list")
    SELINUX_INHERIT_DENIED = "selinux-inherit-denied", ("a SelinuxProfile inherits a system "
                                                        "template not in allowed_system_profiles")
    SELINUX_INHERIT_MISSING = "selinux-inherit-missing", ("a SelinuxProfile inherits a "
                                                          "SelinuxProfile that does not exist")
    SELINUX_INHERIT_INVALID = "selinux-inherit-invalid", ("a SelinuxProfile inherits one that "
                                                          "is invalid, disabled or in a cycle")
    SELINUX_POLICY_INVALID = "selinux-policy-invalid", ("a RawSelinuxProfile's CIL has unbalanced "
                                                        "parentheses or a restricted statement")
    SELINUX_NAME_TAKEN = "selinux-name-taken", ("the name is a module at another priority "
                                                "(never overridden) or a system template")
    SELINUX_MODULE_REJECTED = "selinux-module-rejected", ("semodule rejected the module (its "
                                                          "message quotes the CIL line)")
    SELINUX_STORE_BUSY = "selinux-store-busy", ("another writer holds the SELinux policy store's "
                                                "lock; the next reconcile tries again")
    SELINUX_LIST_FAILED = "selinux-list-failed", "semodule cannot list the policy store's modules"
    SELINUX_RELOAD_FAILED = "selinux-reload-failed", ("the modules are in the store but loading "
                                                      "the policy into the kernel failed")

    # The daemon's worker (answers to POST /v1/reconcile and /v1/reload).
    STOPPING = "stopping", "the daemon is stopping and takes no more requests"
    TIMEOUT = "timeout", "no result within the request's timeout; the request stays queued"
    INTERNAL_ERROR = "internal-error", "a reconcile failed unexpectedly (a bug; see the log)"
    PROFILES_IN_ERROR = "profiles-in-error", "the reconcile ran and some profiles are in error"
    RECONCILE_FAILED = "reconcile-failed", "a reconcile did not succeed, for no named reason"
    RELOAD_FAILED = "reload-failed", "a reload did not succeed, for no named reason"

    # The status API and its socket.
    BAD_REQUEST = "bad-request", "a malformed HTTP request"
    BAD_QUERY = "bad-query", "a malformed, unknown or repeated query parameter"
    NOT_FOUND = "not-found", "no such API endpoint"
    METHOD_NOT_ALLOWED = "method-not-allowed", "the endpoint does not take this HTTP method"
    UNKNOWN_KIND = "unknown-kind", "no such profile kind"
    PROFILE_NOT_FOUND = "profile-not-found", "no profile of that kind and name"
    NOT_READY = "not-ready", "the daemon has not finished its first reconcile"
    FORBIDDEN = "forbidden", "a POST from a peer that is not root"
    BUSY = "busy", "too many connections to the status API"
    INTERNAL = "internal", "the status API failed to answer (a bug; see the log)"
    HTTP_VERSION_NOT_SUPPORTED = "http-version-not-supported", "not an HTTP/1.1 request"
    HEADERS_TOO_LARGE = "headers-too-large", "the request head is too large"
    LENGTH_REQUIRED = "length-required", "a request body without Content-Length"
    BODY_TOO_LARGE = "body-too-large", "the request body is too large"
    REQUEST_TIMEOUT = "request-timeout", "the request did not arrive in time"
    BAD_REPLY = "bad-reply", "the daemon answered with something that is not a JSON object"
    SOCKET_IN_USE = "socket-in-use", "another daemon is answering on the socket"
    SOCKET_SETUP_FAILED = "socket-setup-failed", "the API socket cannot be created"

    # OCI registries, artifacts and the cache.
    REFERENCE_INVALID = "reference-invalid", "an oci:// reference is malformed"
    AUTH_FILE_INVALID = "auth-file-invalid", "the registry auth file is unreadable or invalid"
    REGISTRY_AUTH_REQUIRED = "registry-auth-required", ("the registry needs credentials and "
                                                        "there are none for it")
    REGISTRY_AUTH_FAILED = "registry-auth-failed", ("the registry rejected the credentials, or "
                                                    "asks for authentication secprof cannot give")
    REGISTRY_DENIED = "registry-denied", "the registry denied access (403)"
    REGISTRY_TLS = "registry-tls", "the TLS handshake with the registry failed"
    REGISTRY_PROTOCOL = "registry-protocol", ("the registry's answer is not usable HTTP, or it "
                                              "opened no upload session")
    REGISTRY_REDIRECT_LOOP = "registry-redirect-loop", ("the registry redirected more than 5 "
                                                        "times")
    REGISTRY_REDIRECT_REFUSED = "registry-redirect-refused", (
        "the registry redirected to a non-http(s) URL, from https down to http, or out of the "
        "trust scope")
    ARTIFACT_NOT_FOUND = "artifact-not-found", "the tag or manifest is not in the registry"
    BLOB_NOT_FOUND = "blob-not-found", "a blob is not in the registry"
    DIGEST_UNSUPPORTED = "digest-unsupported", "a digest algorithm other than sha256"
    DIGEST_MISMATCH = "digest-mismatch", ("content, or a signature's claim, is for another "
                                          "digest than the one asked for")
    SIZE_MISMATCH = "size-mismatch", "a blob's size is not the one its descriptor says"
    MANIFEST_TOO_LARGE = "manifest-too-large", "a manifest is over 4 MiB"
    PROFILE_TOO_LARGE = "profile-too-large", ("a profile layer is over max_profile_bytes, or a "
                                              "merged profile has too many syscall decisions")
    ARTIFACT_NO_PROFILE = "artifact-no-profile", "the artifact has no profile for this platform"
    ARTIFACT_UNUSABLE = "artifact-unusable", ("fetching or verifying an oci:// base failed in a "
                                              "way nothing else names (that base's error only)")
    ARTIFACT_INVALID = "artifact-invalid", ("the artifact's profile layer is not exactly one "
                                            "valid SeccompProfile")
    CACHE_UNAVAILABLE = "cache-unavailable", "the OCI cache cannot be opened"
    CACHE_INSECURE = "cache-insecure", "the OCI cache directory is writable by other users"

    # Trust policy and signature verification (agent/oci/signatures).
    UNTRUSTED_REPOSITORY = "untrusted-repository", "no [[trust]] entry covers the repository"
    TRUST_POLICY_INVALID = ("trust-policy-invalid", "a [[trust]] entry is invalid",
                            Exit.CONFIG)
    SIGNATURE_MISSING = "signature-missing", "no signature material at all for the artifact"
    SIGNATURE_MALFORMED = "signature-malformed", ("signature material is undecodable (base64, "
                                                  "PEM, JSON, shape) or over a size cap")
    SIGNATURE_INVALID = "signature-invalid", ("the signature does not verify under the "
                                              "certificate or any trusted key")
    PAYLOAD_INVALID = "payload-invalid", ("the signed payload is not a cosign image-signature "
                                          "claim")
    PAYLOAD_TAMPERED = "payload-tampered", ("the payload is not the one the transparency log "
                                            "recorded")
    REPOSITORY_MISMATCH = "repository-mismatch", ("a valid signature for this digest, claimed "
                                                  "for another repository")
    IDENTITY_MISMATCH = "identity-mismatch", "the certificate's identity (SAN) is not the policy's"
    ISSUER_MISMATCH = "issuer-mismatch", "the certificate's OIDC issuer is not the policy's"
    CERTIFICATE_MISSING = "certificate-missing", ("a keyless policy, but the signature has no "
                                                  "certificate")
    CERTIFICATE_UNTRUSTED = "certificate-untrusted", ("the certificate does not chain to a CA "
                                                      "of the trusted root")
    CERTIFICATE_EXPIRED = "certificate-expired", ("the signing time lies outside the "
                                                  "certificate's validity")
    CERTIFICATE_INVALID = "certificate-invalid", ("not a Sigstore code-signing certificate "
                                                  "(key usage, EKU, identity fields)")
    SCT_INVALID = "sct-invalid", "no embedded SCT from a trusted CT log verifies"
    TLOG_MISSING = "tlog-missing", "the policy needs a transparency-log entry and there is none"
    TLOG_INVALID = "tlog-invalid", ("the log entry's promise or inclusion proof fails, or its "
                                    "log is unknown")
    TLOG_INCONSISTENT = "tlog-inconsistent", ("the log entry records another signature, key or "
                                              "certificate")
    TRUST_ROOT_INVALID = "trust-root-invalid", ("the trusted root is unreadable or lacks what "
                                                "the check needs")
    POLICY_UNSUPPORTED = "policy-unsupported", ("the policy cannot decide on this kind of "
                                                "signature")

    # Signing and pushing (secprof push).
    SIGNING_KEY_INVALID = "signing-key-invalid", "the signing key is unreadable or not ECDSA P-256"
    SIGNING_KEY_PASSWORD = "signing-key-password", "the signing key's password is missing or wrong"
    SIGNING_UNAVAILABLE = "signing-unavailable", ("signing needs an optional package that is not "
                                                  "installed")
    SIGNING_TIMEOUT = "signing-timeout", "keyless signing did not finish in time"
    SIGNATURE_STORE_INVALID = "signature-store-invalid", ("the registry's signature tag holds a "
                                                          "manifest secprof cannot add to")


def exit_status(code: str) -> int:
    """The exit code for an error with ``code``; an unknown one (sent by a daemon of another
    version) counts as a plain error."""
    known = _BY_VALUE.get(code)
    return int(Exit.ERROR if known is None else known.exit_code)


_BY_VALUE: dict[str, Code] = {member.value: member for member in Code}
