"""Where a local run keeps its state: `.fraudflow/` beside pipelines.yaml.

    .fraudflow/steps/<hash>            the step cache: a link to the entry that holds the step's outputs
    .fraudflow/steps/<hash>-<token>/   one finished entry (immutable once committed)
    .fraudflow/steps/.tmp-*/           a step being computed (scratch), owned by one process
    .fraudflow/runs/<run-id>/<step>    a link to the entry that run used (fresh or reused)
    .fraudflow/runs/<run-id>/run.json  the run summary;  report.html  the run report
    .fraudflow/digests.json            content digests of large input files, keyed by their stat (a memo)
    .fraudflow/registry.db, registry/  the model registry (fraudflow.local.registry)

A step's outputs appear under steps/ only when the step succeeded (written under a temporary name, then renamed),
so a failed or interrupted step is never mistaken for a finished one. Entries are never modified: committing a
step again (`--no-cache`, or two runs finishing the same step) adds a new entry and atomically repoints
steps/<hash> at it, so a run that reused the old entry keeps seeing exactly the outputs it used.

State files (run.json, step.json, the digest memo, report.html) are written whole or not at all (a temporary
file, fsync, rename): a full disk or a kill never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATE_DIR = ".fraudflow"
SCRATCH_PREFIX = ".tmp-"
# Files at least this large are digested once and then recognised by their stat (see Digests); smaller ones are
# read every time, which costs little next to the step that reads them.
LARGE_FILE = 64 << 20
# A file changed less than this long ago may still change within the file system's timestamp granularity
# (coarse clocks tick every few ms; some file systems store seconds): its stat cannot vouch for its content yet.
QUIET_NS = 2_000_000_000
# Scratch folders named by fraudflow before they carried their owner (`.tmp-<hash>-<token>`) are removed once
# this old: no step runs for a week.
LEGACY_SCRATCH_AGE = 7 * 24 * 3600


class NotRegular(Exception):
    """An input that is neither a regular file nor a folder: reading it could block (a FIFO) or never end
    (/dev/zero)."""

    def __init__(self, path: Path, kind: str):
        super().__init__(f"{path} is a {kind}")
        self.path, self.kind = path, kind


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


class Store:
    def __init__(self, workspace: Path):
        self.root = workspace / STATE_DIR
        self.steps = self.root / "steps"
        self.runs = self.root / "runs"

    def new_run(self) -> tuple[str, Path]:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        path = self.runs / run_id
        path.mkdir(parents=True)
        return run_id, path

    def cached(self, digest: str) -> Path | None:
        """The entry committed for `digest` (its real path, so a later re-commit does not change what the
        caller reads), or None."""
        path = self.steps / digest
        return path.resolve() if (path / "step.json").is_file() else None

    def scratch(self, digest: str) -> Path:
        path = self.steps / f"{SCRATCH_PREFIX}{digest[:16]}-{_owner_tag()}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        return path

    def commit(self, scratch: Path, digest: str, meta: dict[str, Any]) -> Path:
        """Publish a finished scratch folder as the entry for `digest`, replacing any earlier entry."""
        try:
            atomic_write_text(scratch / "step.json", json.dumps(meta, indent=2, sort_keys=True))
            entry = self.steps / f"{digest}-{secrets.token_hex(4)}"
            scratch.rename(entry)
        except BaseException:
            self.discard(scratch)
            raise
        self._point(self.steps / digest, entry)
        return entry

    def _point(self, link: Path, entry: Path) -> None:
        """Atomically make `link` a symlink to `entry` (os.replace of a new link over the old one)."""
        tmp = link.with_name(f".link-{secrets.token_hex(6)}")
        os.symlink(entry.name, tmp, target_is_directory=True)
        try:
            for _ in range(3):
                try:
                    os.replace(tmp, link)
                    return
                except IsADirectoryError:  # a real folder from an older fraudflow: move it aside, retry
                    with contextlib.suppress(FileNotFoundError):
                        link.rename(link.with_name(f"{link.name}-{secrets.token_hex(4)}"))
            os.replace(tmp, link)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def discard(self, scratch: Path) -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    def clean_stale_scratch(self) -> list[Path]:
        """Remove scratch folders left by processes that are gone (killed mid-step). A folder is removed only
        when its name says it belongs to this host and its owning process no longer runs: a live run's
        scratch, or another host's on a shared file system, is never touched."""
        removed: list[Path] = []
        if not self.steps.is_dir():
            return removed
        host = _host_tag()
        for path in self.steps.glob(f"{SCRATCH_PREFIX}*"):
            parts = path.name[len(SCRATCH_PREFIX) :].split("-")
            if len(parts) == 4:
                stale = parts[1] == host and not _process_alive(parts[2])  # another host's: not ours to judge
            else:  # named by an older fraudflow, with no owner: only once no step could still be writing it
                stale = len(parts) == 2 and _age(path) > LEGACY_SCRATCH_AGE
            if stale:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    @staticmethod
    def link(run_dir: Path, name: str, target: Path) -> Path:
        link = run_dir / name
        os.symlink(os.path.relpath(target, run_dir), link, target_is_directory=True)
        return link

    def mark_latest(self, run_id: str) -> None:
        latest = self.runs / "latest"
        tmp = self.runs / f".latest-{secrets.token_hex(3)}"
        os.symlink(run_id, tmp)
        os.replace(tmp, latest)


# ------------------------------------------------------------------------------------- scratch ownership


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a recycled pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def _owner_tag() -> str:
    """`<host>-<pid>.<start time>`: enough to tell later whether the owner still runs."""
    pid = os.getpid()
    return f"{_host_tag()}-{pid}.{_start_time(pid) or 0}"


def owner_tag() -> str:
    """What a folder owned by this process carries in its name: `<host>-<pid>.<start time>`."""
    return _owner_tag()


def owner_gone(host: str, owner: str) -> bool:
    """Whether the process named by `owner_tag()`'s two parts no longer runs. Only this host's processes can be
    judged: another host's (a shared file system) are taken as running."""
    return host == _host_tag() and not _process_alive(owner)


def _process_alive(owner: str) -> bool:
    pid_text, _, started = owner.partition(".")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, OverflowError):
        return True  # not a name we wrote: keep it
    except PermissionError:
        pass  # exists, another user's
    now = _start_time(pid)
    return now is None or started in ("", "0") or now == started


# ------------------------------------------------------------------------------------------ atomic writes


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary file beside it, fsync, then rename over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every system)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------------ digests


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Digests:
    """Content digests of what a step reads: a file, or every regular file below a folder.

    A file is identified by its bytes. Files of LARGE_FILE bytes or more are hashed once and then recognised by
    (path, device, inode, size, mtime_ns, ctime_ns), remembered in a memo file. Why that is safe: any write,
    truncation or replacement changes the size, mtime or ctime (ctime cannot be set back by `touch -d`, `cp -p`
    or rsync, and a file renamed into place has a new inode); the one gap, a change within the clock's
    granularity right after hashing, is closed by never memoising a file changed less than QUIET_NS ago.
    """

    def __init__(self, memo: Path | None = None, *, large: int = LARGE_FILE):
        self.memo_path, self.large = memo, large
        self.memo: dict[str, list] = {}
        self.dirty = False
        if memo is not None:
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(memo.read_text())
                self.memo = loaded if isinstance(loaded, dict) else {}

    def tree(self, path: Path) -> str:
        """Of a file: its content digest. Of a folder: every regular file below it (sorted relative names and
        contents). Raises NotRegular for a FIFO, device or socket, which could block or never end; hidden
        entries (`.name`) that are not regular files are skipped unread, as preprocess skips them."""
        path = Path(path)
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode):
            return "file:" + self._file(path, st)
        if not stat.S_ISDIR(st.st_mode):
            raise NotRegular(path, file_kind(st.st_mode))
        h = hashlib.sha256()
        for rel, entry, st in self._walk(path, ""):
            h.update(json.dumps([rel, self._file(entry, st)]).encode() + b"\n")
        return "tree:" + h.hexdigest()

    def _walk(self, folder: Path, prefix: str) -> Iterable[tuple[str, Path, os.stat_result]]:
        for name in sorted(os.listdir(folder)):
            entry = folder / name
            rel = f"{prefix}{name}"
            try:
                st = os.stat(entry)  # follows links: a link to a file is read as that file
            except FileNotFoundError:  # a dangling link: nothing to read
                continue
            if stat.S_ISREG(st.st_mode):
                yield rel, entry, st
            elif stat.S_ISDIR(st.st_mode):
                if not entry.is_symlink():  # a linked folder could loop; nothing reads below it
                    yield from self._walk(entry, rel + "/")
            elif not name.startswith("."):
                raise NotRegular(entry, file_kind(st.st_mode))

    def _file(self, path: Path, st: os.stat_result) -> str:
        if st.st_size < self.large:
            return file_digest(path)
        key = str(path.resolve())
        ident = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self.memo.get(key)
        if isinstance(known, list) and known[:-1] == ident:
            return str(known[-1])
        digest = file_digest(path)
        after = os.stat(path)
        changed = [after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns] != ident
        quiet = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > QUIET_NS
        if not changed and quiet:
            self.memo[key] = [*ident, digest]
            self.dirty = True
        return digest

    def save(self) -> None:
        if self.memo_path is not None and self.dirty:
            self.memo = {k: v for k, v in self.memo.items() if os.path.isfile(k)}  # forget deleted files
            self.memo_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.memo_path, json.dumps(self.memo, sort_keys=True))
            self.dirty = False


def tree_digest(path: Path) -> str:
    """A digest of a file, or of every regular file below a folder (names and contents)."""
    return Digests().tree(path)


def step_digest(parts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()
