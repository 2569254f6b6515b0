"""One way to save a file, for the command line and the window: never replace what is not ours, never leave a
half-written file behind, and say so when two processes save the same file.

- Only a regular file, or a symlink to one, is replaced: a device (/dev/null, /dev/full), a FIFO, a socket or a
  folder at the path is refused, and a symlink is written through (its target gets the new contents, the link
  stays a link).
- The new contents go to a temp file `.NAME.XXXXXXXX.part` beside the file, are synced, and renamed over it, so
  the path holds either the old file or the whole new one. The temp file is removed when the write fails, on
  Ctrl-C, and on SIGTERM while a save runs in the main thread; one left by a process killed outright (SIGKILL,
  power loss) is removed by the next save of the same file once it is older than STALE_SECONDS.
- A save holds the lock `.NAME.lock` (flock) while it runs; a second save of the same file meanwhile fails with a
  message that says another process is saving it.
- Free space is checked before writing what is known to be large.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.limits import shown_path, size_text

try:
    import fcntl
except ImportError:  # Windows has no fcntl: saves there are not locked against each other
    fcntl = None

STALE_SECONDS = 60.0  # a temp file of ours this old, with no save of its file running, was left by a killed process
PART_SUFFIX = ".part"
LOCK_SUFFIX = ".lock"
NAME_KEPT = 200  # characters of the file name kept in the temp and lock names (a name may have 255 at most)
RANDOM_CHARS = 8  # tempfile's random part: 8 of [a-z0-9_]

_active: set[Path] = set()  # temp and lock files of saves running now, removed on SIGTERM
_active_lock = threading.Lock()


class SessionError(ValueError):
    """A file that cannot be saved or loaded; the message names the file and what is wrong with it, in one line."""


# ---- where a save may go -----------------------------------------------------------------------------------------
def os_problem(error: OSError) -> str:
    """What an OSError from stat or open means, in words."""
    code = error.errno
    if code == errno.ENOENT:
        return "no such file"
    if code == errno.ELOOP:
        return "a symlink loop (the link points, through other links, back to itself)"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long (at most 255 characters per name)"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return error.strerror or str(error)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolve_target(path: str | os.PathLike) -> Path:
    """The regular file a save to path replaces (a symlink's target), or a new file's path; SessionError if the
    path holds anything else or its folder cannot take a new file."""
    text = os.fspath(path)
    if not text:
        raise SessionError("no file name given")
    shown = shown_path(text)
    path = Path(text)
    try:
        link = os.lstat(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise SessionError(f"cannot save {shown}: {os_problem(error)}") from None
        target = path  # a new file
    else:
        if stat.S_ISLNK(link.st_mode):
            try:
                final = os.stat(path)
            except OSError as error:
                if error.errno == errno.ENOENT:
                    raise SessionError(f"cannot save {shown}: it is a symlink to {shown_path(os.readlink(path))}, "
                                       "which does not exist") from None
                raise SessionError(f"cannot save {shown}: {os_problem(error)}") from None
            if not stat.S_ISREG(final.st_mode):
                raise SessionError(f"cannot save {shown}: it is a symlink to {_kind(final.st_mode)}; only a regular "
                                   "file is replaced")
            target = Path(os.path.realpath(path))
        elif stat.S_ISDIR(link.st_mode):
            raise SessionError(f"cannot save to {shown}: it is a folder; give the name of a file in it")
        elif not stat.S_ISREG(link.st_mode):
            raise SessionError(f"cannot save {shown}: it is {_kind(link.st_mode)}, not a regular file, and is never "
                               "replaced")
        else:
            target = path
    folder = target.parent
    try:
        folder_mode = os.stat(folder).st_mode
    except OSError as error:
        problem = "does not exist" if error.errno == errno.ENOENT else f"cannot be used ({os_problem(error)})"
        raise SessionError(f"cannot save {shown}: the folder {shown_path(folder)} {problem}") from None
    if not stat.S_ISDIR(folder_mode):
        raise SessionError(f"cannot save {shown}: {shown_path(folder)} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SessionError(f"cannot save {shown}: the folder {shown_path(folder)} is not writable")
    return target


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write in folder's file system."""
    usage = os.statvfs(folder)
    return usage.f_bavail * usage.f_frsize


def check_free_space(target: Path, needed: int) -> None:
    """SessionError when the folder's disk has less than `needed` bytes free (the old file stays until the new one
    is complete, so the whole new size is needed)."""
    try:
        free = free_bytes(target.parent)
    except OSError:
        return  # a file system that does not say: the write itself will tell
    if needed > free:
        raise SessionError(f"cannot save {shown_path(target)}: it needs about {size_text(needed)} but the disk has "
                           f"only {size_text(free)} free")


def check_writable(path: str | os.PathLike, needed: int = 0) -> Path:
    """Raise SessionError now if saving to path cannot work (so a long run is not wasted on a bad --save), and
    remove temp files a killed save of it left; returns the file a save will replace."""
    target = resolve_target(path)
    lock = _try_lock(target)
    if lock is not None:
        try:
            remove_stale_parts(target)
        finally:
            _unlock(lock)
    if needed:
        check_free_space(target, needed)
    return target


# ---- temp files, locks, clean-up ---------------------------------------------------------------------------------
def _stem(target: Path) -> str:
    return target.name[:NAME_KEPT]


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{_stem(target)}{LOCK_SUFFIX}")


def _part_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(_stem(target))}\.[a-z0-9_]{{{RANDOM_CHARS}}}{re.escape(PART_SUFFIX)}")


def remove_stale_parts(target: Path, older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove the temp files of saves of target that were killed (older than `older_than` seconds); returns them.
    Call with target's lock held, so no save of it is running."""
    pattern = _part_pattern(target)
    removed = []
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > older_than:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


class _Lock:
    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self.descriptor = descriptor


def _try_lock(target: Path) -> _Lock | None:
    """target's save lock, or None when another process holds it (or locks are not available here)."""
    if fcntl is None:
        return None
    path = _lock_path(target)
    for _ in range(20):  # the holder may unlink the file between our open and our lock: take the file now there
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except OSError:
            same = False
        if same:
            _register(path)
            return _Lock(path, descriptor)
        os.close(descriptor)
    return None


def _lock(target: Path) -> _Lock | None:
    """Take target's save lock, or raise SessionError saying another process is saving it."""
    if fcntl is None:
        return None
    lock = _try_lock(target)
    if lock is None:
        path = _lock_path(target)
        try:  # could the lock file not be made, or is it held?
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise SessionError(f"cannot save {shown_path(target)}: cannot write in the folder "
                               f"{shown_path(target.parent)} ({os_problem(error)})") from None
        os.close(descriptor)
        raise SessionError(f"cannot save {shown_path(target)}: another save of this file is running (in this or "
                           "another process); try again when it has finished")
    return lock


def _unlock(lock: _Lock | None) -> None:
    if lock is None:
        return
    with contextlib.suppress(OSError):
        os.unlink(lock.path)  # while still held: whoever opens the name next creates a new lock file
    os.close(lock.descriptor)
    _unregister(lock.path)


def _register(path: Path) -> None:
    with _active_lock:
        _active.add(path)


def _unregister(path: Path) -> None:
    with _active_lock:
        _active.discard(path)


def _remove_active_and_die(signal_number: int, frame: object) -> None:
    """SIGTERM during a save: remove its temp and lock files, then end as SIGTERM would have."""
    for path in list(_active):
        with contextlib.suppress(OSError):
            os.unlink(path)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def _removed_on_sigterm():
    """While a save runs in the main thread, SIGTERM removes its temp file first (elsewhere signal handlers cannot
    be set; a temp file left then is removed by the next save). Another handler already set is left alone."""
    installed = False
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _remove_active_and_die)
                installed = True
    try:
        yield
    finally:
        if installed:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


# ---- writing -----------------------------------------------------------------------------------------------------
def write_file(path: str | os.PathLike, write: Callable[[BinaryIO], None], needed: int = 0,
               stage_hook: Callable[[str], None] | None = None) -> Path:
    """Write a file at path by calling write(handle) on a temp file beside it, then renaming it over path; returns
    the file replaced (a symlink's target). Raises SessionError; path holds the old file or the whole new one.

    stage_hook (for tests) is called with "written" once the temp file is complete and synced but not yet renamed,
    and with "renamed" just after the rename."""
    return _write(path, needed, stage_hook, write_handle=write)


def write_file_by_name(path: str | os.PathLike, write: Callable[[Path], None], needed: int = 0) -> Path:
    """write_file for writers that take a file name (write(temp_path) fills the temp file)."""
    return _write(path, needed, None, write_name=write)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """write_file for text (UTF-8)."""
    data = text.encode("utf-8")
    return write_file(path, lambda handle: handle.write(data), needed=len(data))


def _write(path: str | os.PathLike, needed: int, stage_hook: Callable[[str], None] | None,
           write_handle: Callable[[BinaryIO], None] | None = None,
           write_name: Callable[[Path], None] | None = None) -> Path:
    target = resolve_target(path)
    shown = shown_path(target)
    with _removed_on_sigterm():
        lock = _lock(target)
        temp: Path | None = None
        try:
            remove_stale_parts(target)
            if needed:
                check_free_space(target, needed)
            mode = _new_file_mode(target)
            try:
                descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{_stem(target)}.",
                                                         suffix=PART_SUFFIX)
            except OSError as error:
                raise SessionError(f"cannot save {shown}: cannot write in the folder {shown_path(target.parent)} "
                                   f"({os_problem(error)})") from None
            temp = Path(temp_name)
            _register(temp)
            if write_handle is not None:
                with os.fdopen(descriptor, "wb") as handle:
                    write_handle(handle)
                    _sync(handle, mode)
            else:
                os.close(descriptor)
                write_name(temp)
                with open(temp, "rb+") as handle:
                    _sync(handle, mode)
            if stage_hook is not None:
                stage_hook("written")
            os.replace(temp, target)
            _unregister(temp)
            temp = None
        except BaseException as error:  # also KeyboardInterrupt: never leave a half-written temp file behind
            if temp is not None:
                with contextlib.suppress(OSError):
                    temp.unlink()
                _unregister(temp)
            _unlock(lock)
            if isinstance(error, SessionError):
                raise
            if isinstance(error, OSError):
                raise SessionError(f"cannot save {shown}: {os_problem(error)}") from None
            if isinstance(error, Exception):
                raise SessionError(f"cannot save {shown}: {type(error).__name__}: {error}") from None
            raise
        _unlock(lock)
    if stage_hook is not None:
        stage_hook("renamed")
    _fsync_folder(target.parent)
    return target


def _sync(handle: BinaryIO, mode: int) -> None:
    handle.flush()
    os.fchmod(handle.fileno(), mode)
    os.fsync(handle.fileno())


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 minus the umask (temp files are 0o600)."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = 0o022
    # Reading the umask with os.umask() would briefly change it for every thread; Linux reports it here instead.
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not every platform or file system allows opening a folder."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
