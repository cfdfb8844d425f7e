"""Model references (`ORG/REPO/FILE.gguf`, `hf://...`, `ORG/REPO:QUANT`) and picking a file by
quant tag from a repository's listing.

Pure string logic, below the config schema: it imports nothing from airpods.config (the schema
validates `model_source` / `default_model` references with `parse_ref`).
"""

from __future__ import annotations

import re

from airpods.errors import UsageError
from airpods.record import record

SPLIT_RE = re.compile(r"^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
# A quant tag as it appears in GGUF file names: `-Q4_K_M.gguf`, `.q8_0.gguf`, `-IQ2_XS-00001-`.
_QUANT_RE = re.compile(
    r"(?:^|[-_./])((?:I?Q\d|TQ\d)(?:_[A-Z0-9]+)*|MXFP4(?:_MOE)?|BF16|FP?16|FP?32)(?=[-.])",
    re.IGNORECASE,
)
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters, backslash
REF_HELP = ("use ORG/REPO (the largest quant that fits), ORG/REPO:QUANT (e.g. :Q4_K_M), "
            "ORG/REPO/FILE.gguf or hf://ORG/REPO/FILE.gguf")


@record
class Ref:
    repo: str
    path: str | None = None  # a file in the repo
    quant: str | None = None  # or a quant tag to pick one
    revision: str = "main"

    def __str__(self) -> str:
        if self.quant:
            return f"{self.repo}:{self.quant}"
        return f"{self.repo}/{self.path}" if self.path else self.repo


@record
class RemoteFile:
    repo: str
    path: str
    size: int
    etag: str  # the sha256 for LFS files, a git blob sha1 otherwise
    commit: str
    url: str  # pinned to `commit`


def parse_ref(text: str) -> Ref:
    """`ORG/REPO/PATH.gguf`, `hf://ORG/REPO/PATH.gguf`, `[hf://]ORG/REPO:QUANT` or
    `[hf://]ORG/REPO` (the quant is picked by what fits: airpods.models.pull)."""
    raw = text.strip()
    body = raw[len("hf://"):] if raw.startswith("hf://") else raw
    if _REPO_RE.fullmatch(body):
        return Ref(repo=body)
    if ":" in body:
        repo, _, quant = body.rpartition(":")
        if _REPO_RE.fullmatch(repo) and re.fullmatch(r"[A-Za-z0-9_]+", quant):
            return Ref(repo=repo, quant=quant)
        raise UsageError(f"bad model reference {text!r}", hint=REF_HELP)
    parts = body.split("/")
    if len(parts) >= 3 and _REPO_RE.fullmatch("/".join(parts[:2])):
        path = "/".join(parts[2:])
        if any(p in ("", ".", "..") for p in parts[2:]) or _UNSAFE_RE.search(path):
            # Refused here, before Podman or the network is touched: the file's name in the
            # volume is its last part, and check_name would refuse it only after both.
            raise UsageError(f"bad model reference {text!r}: the file path is not clean",
                             hint=REF_HELP)
        if not path.endswith(".gguf"):
            raise UsageError(f"{text!r} does not name a .gguf file",
                             hint="llama-server loads GGUF models; " + REF_HELP)
        return Ref(repo="/".join(parts[:2]), path=path)
    raise UsageError(f"bad model reference {text!r}", hint=REF_HELP)


def quant_of(filename: str) -> str | None:
    """The quant tag in a GGUF file name (upper case), or None."""
    found = _QUANT_RE.findall(filename.rsplit("/", 1)[-1])
    return found[-1].upper() if found else None


def split_parts(path: str) -> list[str]:
    """All part names of a split GGUF (`-00001-of-00003.gguf`), or just `path`."""
    match = SPLIT_RE.match(path)
    if not match:
        return [path]
    count = int(match.group("count"))
    return [f"{match.group('prefix')}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


def pick_quant(ref: Ref, files: list[str]) -> str:
    """The one GGUF file (first part of a split one) whose name carries `ref.quant`."""
    ggufs = [f for f in files if f.endswith(".gguf")]
    models = {split_parts(f)[0] for f in ggufs}
    wanted = (ref.quant or "").upper()
    matches = sorted(f for f in models if quant_of(f) == wanted)
    if len(matches) == 1:
        return matches[0]
    available = sorted({q for f in models if (q := quant_of(f))})
    listing = ", ".join(available) if available else "none"
    if not ggufs:
        raise UsageError(f"{ref.repo} has no .gguf files", hint="pick a GGUF repository")
    if not matches:
        raise UsageError(f"no {ref.quant} file in {ref.repo}; quants available: {listing}",
                         hint=f"e.g. airpods models pull {ref.repo}:{available[0]}"
                         if available else REF_HELP)
    raise UsageError(
        f"{len(matches)} files in {ref.repo} carry {ref.quant}: {', '.join(matches)}; "
        f"quants available: {listing}",
        hint=f"name the file: airpods models pull {ref.repo}/{matches[0]}",
    )



def quant_sizes(sizes: dict[str, int]) -> dict[str, tuple[str, int]]:
    """{quant: (first file, bytes of all its parts)} for the model GGUFs in a repo listing
    (vision projectors, `mmproj-*`, are not models)."""
    out: dict[str, tuple[str, int]] = {}
    for path in sorted(sizes):
        base = path.rsplit("/", 1)[-1]
        if not path.endswith(".gguf") or base.lower().startswith("mmproj"):
            continue
        parts = split_parts(path)
        quant = quant_of(path)
        if path != parts[0] or quant is None or quant in out:
            continue
        out[quant] = (path, sum(sizes.get(p, 0) for p in parts))
    return out
