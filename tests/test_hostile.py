"""Hostile inputs and faults: every bad input, tampered file and fault found by an adversarial run, replayed.

Each case asserts what the user sees: one line on stderr, exit code 2, no traceback, nothing replaced that is not
ours, no file left behind, and, for the bombs (small files that claim gigabytes), a peak memory below 500 MB in a
child process whose address space is capped with resource.setrlimit, so a regression fails the test instead of
eating the machine's memory. Every file is built here; none is stored in the repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import resource
import stat
import struct
import subprocess
import sys
import threading
import zlib
from concurrent.futures import Future
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm_explorer
from core import limits, options, safe_save, session, sweep, validate
from core.session import SessionError, load_model, load_session, save_session
from core.trainer import CHECK_EVERY, MAX_HIDDEN, ConfigError, TrainConfig, Trainer

CHILD_ADDRESS_SPACE = 2 << 30  # a child may map at most this much (Python, NumPy and numba map ~300 MB to start)
BOMB_PEAK = 500 * 2**20  # what a bomb case may make resident, at most
LONG_NAME = "x" * 300 + ".npz"  # longer than the 255 characters a file name may have
ZEROS_CHUNK = 1 << 24  # 16 MiB of zeros, deflated once and repeated


# ---- helpers -----------------------------------------------------------------------------------------------------
def run_in_process(*argv: str) -> tuple[int, str, str]:
    """The `lstm-explorer` command's main(argv) here: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = lstm_explorer.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@dataclasses.dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int  # the child's peak resident memory


# A Python child runs its command under this: at exit it writes its own peak resident memory (VmHWM, which counts
# only the program after exec) to the file PEAK_FILE names. wait4's ru_maxrss cannot tell it: Linux keeps in it the
# resident size the child had as a fork of this process, which after a few hundred tests is itself near 1 GB.
PEAK_WRAPPER = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(report)
how, what, *rest = sys.argv[1:]
if how == "-m":
    sys.argv = [what, *rest]
    runpy.run_module(what, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(what, "<string>", "exec"), {"__name__": "__main__"})
"""


def run_child(args: list[str], cwd: Path, address_space: int = CHILD_ADDRESS_SPACE, timeout: float = 240.0,
              env: dict[str, str] | None = None, stderr: int | None = None) -> ChildResult:
    """Run a command in a child whose address space is capped; a Python child reports its own peak memory (see
    PEAK_WRAPPER), any other is read with wait4. stderr, if given, is where the child's stderr goes (its text is
    then not collected)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    peak_file = cwd / f".peak-{os.getpid()}-{threading.get_ident()}"
    if args[0] == sys.executable and args[1] in ("-m", "-c"):
        args = [sys.executable, "-c", PEAK_WRAPPER, *args[1:]]
        env = {**(os.environ if env is None else env), "PEAK_FILE": str(peak_file)}
    process = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE if stderr is None else stderr, preexec_fn=cap, env=env)
    output: dict[str, bytes] = {"err": b""}
    streams = [("out", process.stdout)] + ([("err", process.stderr)] if stderr is None else [])
    readers = [threading.Thread(target=lambda name, stream: output.__setitem__(name, stream.read()),
                                args=(name, stream)) for name, stream in streams]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, process.kill)  # a hang fails the test (it shows as -9) instead of the suite
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    for _, stream in streams:
        stream.close()
    peak = usage.ru_maxrss * 1024
    if peak_file.exists():
        peak = int(peak_file.read_text()) * 1024
        peak_file.unlink()
    return ChildResult(process.returncode, output["out"].decode(), output["err"].decode(), peak)


def cli_child(*argv: str, cwd: Path, **kwargs: object) -> ChildResult:
    return run_child([sys.executable, "-m", "lstm_explorer", *argv], cwd=cwd, **kwargs)


def assert_one_line_exit_2(code: int, err: str, *words: str) -> None:
    """What every refused input must give: exit 2 and one line on stderr (no traceback) with these words."""
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)
    return out.getvalue()


@dataclasses.dataclass
class Deflated:
    """A deflate stream (already compressed), with the CRC and size of what it decompresses to."""

    stream: bytes
    crc: int
    size: int


def deflated_zeros(header: dict, n_bytes: int) -> Deflated:
    """An .npy member with this header followed by n_bytes of zeros, deflated: a few MB that expand to n_bytes.
    The compressor is fully flushed after each chunk of zeros, so one compressed chunk is repeated."""
    assert n_bytes % ZEROS_CHUNK == 0
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head.getvalue()) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(ZEROS_CHUNK)
    chunk = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    crc = zlib.crc32(head.getvalue())
    for _ in range(n_bytes // ZEROS_CHUNK):
        crc = zlib.crc32(zeros, crc)
    return Deflated(start + chunk * (n_bytes // ZEROS_CHUNK) + end, crc, len(head.getvalue()) + n_bytes)


def write_zip(path: Path, members: list[tuple[str, bytes | Deflated]]) -> None:
    """A zip written by hand: stored members, or deflated ones given as streams; zip64 end records when there are
    more than 65,535 members (as zipfile writes them)."""
    local, central = bytearray(), bytearray()
    for name, payload in members:
        encoded = name.encode()
        if isinstance(payload, Deflated):
            method, data, crc, size = 8, payload.stream, payload.crc, payload.size
        else:
            method, data, crc, size = 0, payload, zlib.crc32(payload), len(payload)
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size,
                             len(encoded), 0) + encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    count, directory_offset = len(members), len(local)
    end = bytearray()
    if count > 0xFFFF:
        zip64_offset = directory_offset + len(central)
        end += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), directory_offset)
        end += struct.pack("<IIQI", 0x07064B50, 0, zip64_offset, 1)
        end += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, len(central), directory_offset, 0)
    else:
        end += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), directory_offset, 0)
    path.write_bytes(bytes(local + central + end))


def npz_members(arrays: dict[str, np.ndarray]) -> list[tuple[str, bytes]]:
    return [(f"{key}.npy", npy_bytes(value)) for key, value in arrays.items()]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid session (Adam, so it has every optimizer array), trained past two checks."""
    path = tmp_path_factory.mktemp("saved") / "run.npz"
    trainer = Trainer(TrainConfig(heldout_size=64, optimizer="adam", learning_rate=0.01))
    trainer.step(250)
    save_session(path, trainer)
    return path


@pytest.fixture(scope="module")
def arrays(saved: Path) -> dict[str, np.ndarray]:
    with np.load(saved, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def tampered(folder: Path, arrays: dict[str, np.ndarray], name: str = "tampered.npz", **changes: object) -> Path:
    """A copy of the session with some members replaced (key__part for key.part), or dropped with None."""
    out = dict(arrays)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = np.asarray(value)
    path = folder / name
    np.savez(path, **out)
    return path


# ---- saving: never replace what is not ours ------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_save_to_a_device_is_refused_and_the_device_survives(device: str, tmp_path: Path) -> None:
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    before = os.stat(device)
    assert stat.S_ISCHR(before.st_mode)
    # Checked first in this process, so a regression fails here and never gets to replace the machine's device.
    with pytest.raises(SessionError, match="a device, not a regular file"):
        safe_save.resolve_target(device)
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", device)
    assert_one_line_exit_2(code, err, device, "not a regular file")
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_save_to_a_fifo_is_refused_and_the_fifo_survives(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(fifo))
    assert_one_line_exit_2(code, err, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert listing(tmp_path) == ["pipe.npz"]
    with pytest.raises(SessionError, match="not a regular file"):  # and reading one never blocks
        load_model(fifo)


def test_save_through_a_symlink_writes_its_target(tmp_path: Path, saved: Path) -> None:
    target = tmp_path / "target.npz"
    target.write_bytes(saved.read_bytes())
    target.chmod(0o640)
    link = tmp_path / "link.npz"
    link.symlink_to("target.npz")
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(link))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == "target.npz"
    assert load_session(target).samples_seen == 1  # the target holds the new session
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # with its own permissions kept
    assert listing(tmp_path) == ["link.npz", "target.npz"]


@pytest.mark.parametrize("case", ["dangling", "loop", "to a folder"])
def test_save_through_a_bad_symlink_is_refused(tmp_path: Path, case: str) -> None:
    link = tmp_path / "link.npz"
    if case == "dangling":
        link.symlink_to("missing.npz")
        words = "which does not exist"
    elif case == "loop":
        link.symlink_to("link.npz")
        words = "symlink loop"
    else:
        (tmp_path / "folder").mkdir()
        link.symlink_to("folder")
        words = "symlink to a folder"
    before = listing(tmp_path)
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(link))
    assert_one_line_exit_2(code, err, words)
    assert link.is_symlink() and listing(tmp_path) == before


def test_a_symlink_loop_is_not_called_a_missing_file(tmp_path: Path) -> None:
    loop = tmp_path / "loop.npz"
    loop.symlink_to("loop.npz")
    code, _, err = run_in_process("eval", str(loop))
    assert_one_line_exit_2(code, err, "symlink loop")
    assert "no such file" not in err


def test_two_saves_of_one_file_say_so(tmp_path: Path, saved: Path) -> None:
    """A second process saving the same file while the first is still writing it is told so; the first save is
    not disturbed, and once it has finished the file can be saved again."""
    target = tmp_path / "run.npz"
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=tmp_path, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"  # it holds the file's save lock now
        code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(target))
        assert_one_line_exit_2(code, err, "another save of this file is running")
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "saved\n"
    finally:
        writer.kill()
        writer.wait(timeout=30)
        writer.stdin.close()
        writer.stdout.close()
    assert load_session(target).params.flat[0] == 7.0  # the first save's contents, whole
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(target))
    assert code == 0, err
    assert listing(tmp_path) == ["run.npz"]


SLOW_WRITER = """
import sys
from core import session
from core.trainer import TrainConfig, Trainer

def wait(stage):
    if stage == "written":
        print("writing", flush=True)
        sys.stdin.readline()

trainer = Trainer(TrainConfig(heldout_size=16))
trainer.params.flat[0] = 7.0
session.write_stage_hook = wait
session.save_session(sys.argv[1], trainer)
print("saved", flush=True)
"""


def test_full_disk_is_found_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --save, a disk without room for the session stops the run before it trains (it would be lost)."""
    monkeypatch.setattr(safe_save, "free_bytes", lambda folder: 4096)
    code, out, err = run_in_process("train", "--samples", "1", "--save", str(tmp_path / "run.npz"))
    assert_one_line_exit_2(code, err, "needs about", "4.1 kB free")
    assert "sample 0" not in out  # no report: training never started
    assert listing(tmp_path) == []


FILE_SIZE_LIMIT = """
import resource, signal, sys
from core import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # (the NumPy engine: no compiled-kernel cache files)
sys.exit(cli.main(["train", "--samples", "1", "--quiet", "--hidden", "100", "--engine", "numpy",
                   "--save", sys.argv[1]]))
"""


def test_a_write_that_fails_part_way_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path,
                                                                                saved: Path) -> None:
    target = tmp_path / "run.npz"
    target.write_bytes(saved.read_bytes())
    result = run_child([sys.executable, "-c", FILE_SIZE_LIMIT, str(target)], cwd=tmp_path)
    assert_one_line_exit_2(result.returncode, result.stderr, "cannot save", "too large")
    assert target.read_bytes() == saved.read_bytes()
    assert listing(tmp_path) == ["run.npz"]


def test_stale_temp_files_are_removed_by_the_next_save(tmp_path: Path, saved: Path) -> None:
    """Temp files of killed saves of this file older than a minute go; a fresh one (a save that may still be
    running) and other files' stay."""
    target = tmp_path / "run.npz"
    stale, fresh = tmp_path / ".run.npz.abcd1234.part", tmp_path / ".run.npz.zzzz9999.part"
    other = tmp_path / ".other.npz.abcd1234.part"
    for path in (stale, fresh, other):
        path.write_bytes(b"half a session")
    old = os.stat(stale).st_mtime - 2 * safe_save.STALE_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    code, _, err = run_in_process("train", "--samples", "1", "--quiet", "--save", str(target))
    assert code == 0, err
    assert listing(tmp_path) == sorted([".other.npz.abcd1234.part", ".run.npz.zzzz9999.part", "run.npz"])


# ---- files that cost more than their size ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, np.ndarray]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    paths = {}
    # A valid session with one extra member: 3 GiB of zeros in a few MB.
    junk = deflated_zeros({"descr": "|u1", "fortran_order": False, "shape": (3 << 30,)}, 3 << 30)
    paths["extra member"] = folder / "extra.npz"
    write_zip(paths["extra member"], [*npz_members(arrays), ("junk.npy", junk)])
    # A model with no config and 8,192 hidden units: 2 GiB of zero weights in about 2 MB.
    hidden = 8192
    weights = {"lstm.weight_ih_l0": np.zeros((4 * hidden, 2)), "lstm.bias_ih_l0": np.zeros(4 * hidden),
               "lstm.bias_hh_l0": np.zeros(4 * hidden), "head.weight": np.zeros((1, hidden)),
               "head.bias": np.zeros(1)}
    big = deflated_zeros({"descr": "<f8", "fortran_order": False, "shape": (4 * hidden, hidden)},
                         4 * hidden * hidden * 8)
    paths["8192 hidden"] = folder / "wide.npz"
    write_zip(paths["8192 hidden"], [*npz_members(weights), ("lstm.weight_hh_l0.npy", big)])
    # A known member declaring far more rows than it may have, all of them really there (compressed zeros).
    rows = deflated_zeros({"descr": "<f8", "fortran_order": False, "shape": (1 << 22, 4)}, (1 << 22) * 32)
    paths["long history"] = folder / "rows.npz"
    write_zip(paths["long history"], [*npz_members({k: v for k, v in arrays.items() if k != "history.rows"}),
                                      ("history.rows.npy", rows)])
    # Optimizer state larger than the weights it is for.
    first = deflated_zeros({"descr": "<f8", "fortran_order": False, "shape": (1 << 25,)}, (1 << 25) * 8)
    paths["big optimizer state"] = folder / "adam.npz"
    write_zip(paths["big optimizer state"], [*npz_members({k: v for k, v in arrays.items()
                                                           if k != "optimizer.first"}), ("optimizer.first.npy", first)])
    # 100,000 members.
    tiny = npy_bytes(np.zeros(1))
    paths["100,000 members"] = folder / "many.npz"
    write_zip(paths["100,000 members"], [*npz_members(arrays), *((f"extra{i}.npy", tiny) for i in range(100_000))])
    return paths


def test_an_unknown_member_is_never_decompressed(bombs: dict[str, Path], tmp_path: Path) -> None:
    """eval of a valid session carrying 3 GiB of compressed zeros in an extra member: it works, in bounded memory."""
    result = cli_child("eval", str(bombs["extra member"]), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sums right" in result.stdout
    assert result.peak_bytes < BOMB_PEAK, limits.size_text(result.peak_bytes)
    trainer = load_session(bombs["extra member"])  # and it opens as a session
    assert trainer.samples_seen == 250


@pytest.mark.parametrize("case, words", [
    ("8192 hidden", "8,192 hidden units; at most 4096"),
    ("long history", "history.rows has shape (4194304, 4)"),
    ("big optimizer state", "optimizer.first has shape (33554432,)"),
    ("100,000 members", "lists 100,033 members in its directory; a saved model or session has at most 64"),
])
def test_a_bomb_is_refused_before_it_is_read(bombs: dict[str, Path], tmp_path: Path, case: str, words: str) -> None:
    result = cli_child("eval", str(bombs[case]), cwd=tmp_path)
    assert_one_line_exit_2(result.returncode, result.stderr, words)
    assert result.peak_bytes < BOMB_PEAK, limits.size_text(result.peak_bytes)
    with pytest.raises(SessionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_session(bombs[case])


def test_hidden_size_is_bounded_without_a_config(tmp_path: Path) -> None:
    hidden = MAX_HIDDEN + 1  # one over: stored as plain arrays of zeros in a small file
    np.savez_compressed(tmp_path / "wide.npz", **{
        "lstm.weight_ih_l0": np.zeros((4 * hidden, 2)), "lstm.weight_hh_l0": np.zeros((4 * hidden, 1)),
        "lstm.bias_ih_l0": np.zeros(4 * hidden), "lstm.bias_hh_l0": np.zeros(4 * hidden),
        "head.weight": np.zeros((1, hidden)), "head.bias": np.zeros(1)})
    with pytest.raises(SessionError, match=f"{hidden:,} hidden units; at most {MAX_HIDDEN}"):
        load_model(tmp_path / "wide.npz")


def test_the_limits_agree_with_the_trainer() -> None:
    assert validate.MAX_HIDDEN == MAX_HIDDEN
    assert limits.CHECK_EVERY == CHECK_EVERY


@pytest.mark.parametrize("count, words", [(20_000, "history.events is text of"), (501, "at most 500")])
def test_many_history_events_are_refused(tmp_path: Path, arrays: dict[str, np.ndarray], count: int,
                                         words: str) -> None:
    """The window draws a marker per event: a session keeps at most the 500 the trainer keeps."""
    path = tampered(tmp_path, arrays, history__events=json.dumps([[i, "lr 0.1 -> 0.2"] for i in range(count)]))
    with pytest.raises(SessionError, match=words):
        load_session(path)


def test_a_large_held_out_set_is_refused(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    config = json.loads(str(arrays["config"]))
    config["heldout_size"] = 65_536
    path = tampered(tmp_path, arrays, config=json.dumps(config))
    with pytest.raises(SessionError, match="heldout_size 65536 is more than the 16,384"):
        load_session(path)


@pytest.mark.parametrize("depth, words", [(100_000, "at most 131,072 are read"), (60_000, "nested too deeply")])
def test_deeply_nested_config_json(tmp_path: Path, arrays: dict[str, np.ndarray], depth: int, words: str) -> None:
    path = tampered(tmp_path, arrays, config="[" * depth + "]" * depth)
    code, _, err = run_in_process("eval", str(path))
    assert_one_line_exit_2(code, err, words)
    with pytest.raises(SessionError, match=words):
        load_session(path)


@pytest.mark.parametrize("key, shape, words", [
    ("lstm.weight_ih_l0", (64, 3), "take 3 inputs"),
    ("head.weight", (3, 16), "give 3 outputs"),
])
def test_a_model_that_does_not_add_two_numbers_is_refused(tmp_path: Path, arrays: dict[str, np.ndarray], key: str,
                                                          shape: tuple, words: str) -> None:
    """Without a config too: a bare state_dict whose input size is not 2 or output size not 1."""
    weights = {k: v for k, v in arrays.items() if k.startswith(("lstm.", "head."))}
    weights[key] = np.zeros(shape)
    if key == "head.weight":
        weights["head.bias"] = np.zeros(3)
    np.savez(tmp_path / "model.npz", **weights)
    for command in (["eval"], ["add", "1", "2", "--model"]):
        code, out, err = run_in_process(*command, str(tmp_path / "model.npz"))
        assert_one_line_exit_2(code, err, words)
        assert "sums right" not in out


# ---- values: every field range-checked ---------------------------------------------------------------------------
TAMPERED = {
    "format of another program": ({"format": "numpy weights"}, "its format is"),
    "format version from the future": ({"format_version": np.int64(99)}, "newer version"),
    "format version negative": ({"format_version": np.int64(-1)}, "format_version"),
    "format version not a number": ({"format_version": "1"}, "format_version"),
    "history NaN": ({"history__rows": "nan"}, "history.rows contains NaN"),
    "history infinite": ({"history__rows": "inf"}, "history.rows contains NaN"),
    "history negative loss": ({"history__rows": "negative loss"}, "history.rows column 1"),
    "history accuracy above 1": ({"history__rows": "accuracy 2"}, "history.rows column 3"),
    "pending NaN": ({"history__pending": np.full((1, 5), np.nan), "history__stride": np.int64(2)},
                    "history.pending contains NaN"),
    "pending weight 0": ({"history__pending": np.array([[100.0, 1.0, 0.5, 0.5, 0.0]]),
                          "history__stride": np.int64(2)}, "history.pending column 4"),
    "stride 0": ({"history__stride": np.int64(0)}, "history.stride"),
    "stride not a power of two": ({"history__stride": np.int64(3)}, "power of two"),
    "stride huge": ({"history__stride": np.int64(2**62)}, "history.stride"),
    "event at sample 10**400": ({"history__events": "[[1" + "0" * 400 + ", \"x\"]]"}, "history.events"),
    "event negative": ({"history__events": '[[-1, "x"]]'}, "history.events"),
    "event at a fraction": ({"history__events": '[[1.5, "x"]]'}, "history.events"),
    "event NaN": ({"history__events": '[[NaN, "x"]]'}, "history.events"),
    "event text long": ({"history__events": json.dumps([[1, "x" * 5000]])}, "history.events"),
    "solved_at NaN seconds": ({"solved_at": "[100, NaN]"}, "solved_at"),
    "solved_at negative": ({"solved_at": "[-100, 1.0]"}, "solved_at"),
    "solved_at after samples_seen": ({"solved_at": "[1000000, 1.0]"}, "solved_at"),
    "solved_at huge": ({"solved_at": "[1" + "0" * 400 + ", 1.0]"}, "solved_at"),
    "samples_seen 2**63-1": ({"samples_seen": np.int64(2**63 - 1)}, "samples_seen"),
    "samples_seen float": ({"samples_seen": 250.0}, "samples_seen"),
    "training seconds NaN": ({"training_seconds": np.nan}, "training_seconds"),
    "training seconds infinite": ({"training_seconds": np.inf}, "training_seconds"),
    "training seconds negative": ({"training_seconds": -1.0}, "training_seconds"),
    "accuracy above 1": ({"accuracy": 1.5}, "accuracy"),
    "Adam second moment negative": ({"optimizer__second": "negative"}, "optimizer.second must be at least 0"),
    "rollback second moment negative": ({"rollback__optimizer__second": "negative"},
                                        "rollback.optimizer.second must be at least 0"),
    "Adam steps negative": ({"optimizer__steps": np.int64(-1)}, "optimizer.steps"),
    "Adam steps huge": ({"optimizer__steps": np.int64(2**63 - 1)}, "optimizer.steps"),
    "rollback after samples_seen": ({"rollback__samples_seen": np.int64(10**6)}, "rollback.samples_seen"),
    "rollback rng garbage": ({"rollback__rng_state": '{"bit_generator": "MT19937"}'}, "rollback.rng_state"),
    "interval NaN": ({"interval": np.full((3, 2), np.nan)}, "interval contains NaN"),
    "interval bit error above 1": ({"interval": np.array([[0.5, 3.0]])}, "interval column 1"),
    "loss note control characters": ({"loss": "bce\nsum"}, "loss must name"),
    "model weights in a model file": ({"format": session.MODEL_FORMAT}, "weights only"),
}


def _tamper_value(arrays: dict[str, np.ndarray], key: str, value: object) -> object:
    """Spelled-out tamperings of the saved arrays (the rest of TAMPERED gives the new value itself)."""
    if key == "history__rows":
        rows = arrays["history.rows"].copy()
        column, new = {"nan": (1, np.nan), "inf": (2, np.inf), "negative loss": (1, -1.0),
                       "accuracy 2": (3, 2.0)}[value]
        rows[0, column] = new
        return rows
    if isinstance(value, str) and value == "negative":
        moment = arrays[key.replace("__", ".")].copy()
        moment[5] = -1e-3
        return moment
    return value


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_field_is_refused_in_one_line(tmp_path: Path, arrays: dict[str, np.ndarray], case: str) -> None:
    changes, words = TAMPERED[case]
    path = tampered(tmp_path, arrays, **{key: _tamper_value(arrays, key, value) for key, value in changes.items()})
    with pytest.raises(SessionError, match=words) as caught:
        load_session(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert len(str(caught.value)) < 400


def test_the_untampered_copy_loads(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The cases above change one field each in a session that loads."""
    assert load_session(tampered(tmp_path, arrays)).samples_seen == 250


def _hostile_values() -> st.SearchStrategy:
    numbers = st.sampled_from([0, 1, -1, 2, 7, 100, 250, 2**31, 2**53, 2**53 + 1, 2**62, 2**63 - 1, -2**63])
    floats = st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 1e308, -1e308, 1e-320, np.nan, np.inf, -np.inf])
    json_leaves = st.one_of(numbers, floats.filter(math.isfinite), st.text(max_size=8), st.none(), st.booleans())
    json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
    return st.one_of(
        numbers.map(np.int64), floats.map(np.float64), st.booleans().map(np.bool_),
        json_values.map(lambda value: np.array(json.dumps(value))),
        st.text(max_size=20).map(np.array),
        st.tuples(st.integers(0, 3), st.integers(0, 6), floats).map(lambda t: np.full(t[:2], t[2])),
        st.tuples(st.integers(0, 40), floats).map(lambda t: np.full(t[0], t[1])),
    )


SESSION_KEYS = sorted(validate.KNOWN_KEYS - {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                                             "rnn.bias_hh_l0"})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_field_value_is_refused_in_one_line_or_loads_whole(tmp_path: Path, arrays: dict[str, np.ndarray],
                                                                data: st.DataObject) -> None:
    """Replace one to three fields with any value: the file is refused with one line, or what loads can train on,
    be saved again and loaded again."""
    changes = data.draw(st.dictionaries(st.sampled_from(SESSION_KEYS), st.one_of(st.none(), _hostile_values()),
                                        min_size=1, max_size=3))
    path = tampered(tmp_path, arrays, **{key.replace(".", "__"): value for key, value in changes.items()})
    try:
        trainer = load_session(path)
    except SessionError as error:
        assert str(error) and "\n" not in str(error) and len(str(error)) < 600
        return
    assert np.all(np.isfinite(trainer.params.flat))
    assert 0 <= trainer.samples_seen <= limits.MAX_SAMPLES
    for samples, _ in trainer.history.events:
        float(samples)  # what drawing a marker does: no OverflowError
    assert np.all(np.isfinite(trainer.history.array()))
    trainer.step(1)
    again = tmp_path / "again.npz"
    save_session(again, trainer)
    assert load_session(again).samples_seen == trainer.samples_seen


# ---- options: one line, exit 2, the option named -----------------------------------------------------------------
def test_a_file_name_too_long_is_one_line_everywhere(tmp_path: Path, saved: Path) -> None:
    for argv in (["eval", LONG_NAME], ["add", "1", "2", "--model", LONG_NAME],
                 ["train", "--samples", "1", "--quiet", "--save", LONG_NAME]):
        code, _, err = run_in_process(*argv)
        assert_one_line_exit_2(code, err, "file name is too long")
        assert len(err) < 300  # the name is cut, not echoed whole
    assert listing(tmp_path) == []


@pytest.mark.parametrize("argv, words", [
    (["eval", ""], "no file name given"),
    (["add", "1", "2", "--model", ""], "no file name given"),
    (["train", "--bits", "40"], "--bits must be"),
    (["train", "--hidden", "0"], "--hidden must be"),
    (["train", "--batch", "70000"], "--batch must be"),
    (["train", "--samples", str(2**60)], "--samples must be"),
    (["train", "--optimizer", "x" * 500], "--optimizer must be one of"),
    (["train", "--lr", "1" * 500], "--lr"),
    (["eval", "--bits", "99", "model.npz"], "no such file"),
    (["add", "1" * 500, "2"], "first operand"),
])
def test_bad_options_give_one_short_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                         words: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_in_process(*argv)
    assert_one_line_exit_2(code, err, words)
    assert len(err) < 250, err
    assert "eval" not in argv or ". is a folder" not in err


@pytest.mark.parametrize("argv", [["train", "--hidden", "4096", "--samples", "1"],
                                  ["train", "--bits", "32", "--batch", "65536", "--samples", "1"]])
def test_a_run_that_would_not_fit_in_memory_is_refused_up_front(tmp_path: Path, argv: list[str]) -> None:
    """Legal sizes the machine cannot hold: refused with the size and the limit instead of a MemoryError."""
    result = cli_child(*argv, "--quiet", cwd=tmp_path, address_space=1 << 30)
    assert_one_line_exit_2(result.returncode, result.stderr, "needs about", "of memory", "is available here")
    assert result.peak_bytes < BOMB_PEAK


@pytest.mark.parametrize("config", [{}, pytest.param({"hidden_size": 256, "batch_size": 64, "optimizer": "adam"},
                                                      marks=pytest.mark.slow),
                                    {"n_bits": 16, "batch_size": 1024}, {"heldout_size": 16_384}])
def test_the_memory_estimate_is_not_below_what_a_run_uses(tmp_path: Path, config: dict) -> None:
    """A run on the NumPy engine (the larger of the two) with checks, an evaluation and a save, measured."""
    result = run_child([sys.executable, "-c", MEASURE, json.dumps(config)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    used, estimate = (int(n) for n in result.stdout.split())
    assert used <= estimate, (limits.size_text(used), limits.size_text(estimate))


MEASURE = """
import json, resource, sys
from core import limits
from core.session import save_session
from core.trainer import TrainConfig, Trainer

config = TrainConfig(**json.loads(sys.argv[1]))
Trainer(TrainConfig(heldout_size=4), engine="numpy").step(1)  # what every run has: imports, first allocations
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
trainer = Trainer(config, engine="numpy")
trainer.step(max(2 * config.batch_size, 2 * 100))
trainer.evaluate()
save_session("run.npz", trainer)
used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(used, limits.config_training_bytes(config))
"""


def test_one_line_names_the_option_and_cuts_values() -> None:
    assert options.one_line("n bits must be a whole number from 2 to 32, got 40") == (
        "--bits must be a whole number from 2 to 32, got 40")
    long = options.one_line(f"optimizer must be one of sgd, got {'x' * 300!r}")
    assert long.startswith("--optimizer must be") and len(long) < 100
    assert options.one_line("two\nlines") == "two lines"


# ---- divergence ----------------------------------------------------------------------------------------------------
def test_a_diverged_run_saves_the_count_of_its_rolled_back_weights(tmp_path: Path) -> None:
    trainer = Trainer(TrainConfig(heldout_size=64))
    trainer.step(250)
    trainer.update(learning_rate=10_000.0)  # takes a rollback point at 250
    result = trainer.step(500)
    assert result.diverged
    diverged_at = int(result.message.split("diverged at sample ")[1].split()[0].replace(",", ""))
    assert diverged_at > 250
    assert f"the weights of sample {trainer.samples_seen:,} restored" in result.message
    save_session(tmp_path / "run.npz", trainer)
    restored = load_session(tmp_path / "run.npz")
    assert restored.samples_seen == restored.rollback_point.samples_seen == 250
    np.testing.assert_array_equal(restored.params.flat, restored.rollback_point.flat)


@pytest.mark.parametrize("out, words", [("", "--out needs a folder name"), ("run.npz", "is a file, not a folder"),
                                        ("missing/deeper", "does not exist")])
def test_insights_refuses_a_bad_out_folder(tmp_path: Path, saved: Path, monkeypatch: pytest.MonkeyPatch, out: str,
                                           words: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.npz").write_bytes(saved.read_bytes())
    code, _, err = run_in_process("insights", "run.npz", "--out", out)
    assert_one_line_exit_2(code, err, words)
    assert listing(tmp_path) == ["run.npz"]  # nothing written into the current folder


@pytest.mark.parametrize("argv", [["insights", "model.npz"], ["insights", "model.npz", "--out", "x", "--bits", "z"],
                                  ["train", "--bogus"], ["eval"]])
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_in_process(*argv)
    assert_one_line_exit_2(code, err, "--help")


@pytest.mark.parametrize("argv, words", [
    (["--soak", "0"], "--soak must be"), (["--soak", "-5"], "--soak must be"), (["--soak", "nan"], "--soak must be"),
    (["--soak", "inf"], "--soak must be"), (["--gui", "--seconds", "nan"], "--seconds must be"),
    (["--gui", "--launches", "0"], "--launches must be"),
])
def test_bench_durations_are_checked_before_anything_starts(argv: list[str], words: str) -> None:
    code, out, err = run_in_process("bench", *argv)
    assert_one_line_exit_2(code, err, words)
    assert out == ""


# ---- sweep ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--grid", "seed=0:1" + "0" * 30], "more values than the 100,000 cells"),
    (["--grid", "seed=0:1000", "hidden=" + ",".join(str(h) for h in range(1, 102))], "the grid has 101,000 cells"),
    (["--grid", "lr="], "lr: empty value"),
    (["--max-samples", "1" + "0" * 30], "--max-samples must be"),
    (["--out", "."], "it is a folder"),
    (["--out", LONG_NAME.replace(".npz", ".csv")], "file name is too long"),
    (["--plot", LONG_NAME.replace(".npz", ".png")], "file name is too long"),
    (["--out", "/dev/null"], "not a regular file"),
])
def test_sweep_arguments_are_refused_before_any_cell_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          argv: list[str], words: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "ProcessPool", None)  # a cell that started would fail the test
    code, out, err = run_in_process("sweep", "--grid", "seed=0:2", "--max-samples", "100", *argv)
    assert_one_line_exit_2(code, err, words)
    assert out == "" and listing(tmp_path) == []
    assert len(err) < 300


class InlinePool:
    """ProcessPool's interface, the cells run here one after another; remembers how many processes it was asked
    for."""

    asked: ClassVar[list[int]] = []

    def __init__(self, workers: int) -> None:
        InlinePool.asked.append(workers)

    def submit(self, cells: list, max_samples: int, engine: str) -> list[Future]:
        futures = []
        for cell in cells:
            future: Future = Future()
            future.set_result((cell.index, sweep.run_cell(cell.config, max_samples, engine)))
            futures.append(future)
        return futures

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_sweep_workers_are_capped_at_the_core_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "ProcessPool", InlinePool)
    InlinePool.asked.clear()
    cells = limits.cpu_count() + 2
    code, _, err = run_in_process("sweep", "--workers", "40", "--grid", f"seed=0:{cells}", "--max-samples", "100")
    assert code == 0, err
    assert InlinePool.asked == [limits.cpu_count()]
    assert f"this machine has {limits.cpu_count()} cores" in err


def test_a_sweep_that_would_not_fit_in_memory_is_refused(tmp_path: Path) -> None:
    result = cli_child("sweep", "--grid", "hidden=4096", "--max-samples", "100", cwd=tmp_path,
                       address_space=1 << 30)
    assert_one_line_exit_2(result.returncode, result.stderr, "needs about", "is available here")
    assert result.peak_bytes < BOMB_PEAK


# ---- the window: a dialog for every bad file, the same save path -------------------------------------------------
WAIT_MS = 30_000


@pytest.fixture
def window(qtbot, monkeypatch: pytest.MonkeyPatch):
    """A window on a small trained session, its error dialogs captured instead of shown."""
    from PySide6.QtWidgets import QMessageBox

    from explorer.main_window import MainWindow

    dialogs: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *rest: dialogs.append((title, text)))
    trainer = Trainer(TrainConfig(heldout_size=64))
    trainer.step(200)
    win = MainWindow(trainer, restore_layout=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.latest_snapshot is not None, timeout=WAIT_MS)
    win.dialogs = dialogs
    yield win
    win.close()
    assert win.stop_training_thread()


@pytest.mark.parametrize("case", ["long name", "event at sample 10**400", "20,000 events", "large held-out set",
                                  "samples_seen 2**63-1", "model input size 3"])
def test_the_window_refuses_a_bad_file_with_one_dialog(qtbot, window, tmp_path: Path, arrays: dict, case: str):
    config = json.loads(str(arrays["config"]))
    config["heldout_size"] = 65_536
    paths = {
        "long name": tmp_path / LONG_NAME,
        "event at sample 10**400": tampered(tmp_path, arrays, history__events="[[1" + "0" * 400 + ', "x"]]'),
        "20,000 events": tampered(tmp_path, arrays, history__events=json.dumps([[i, "x"] for i in range(20_000)])),
        "large held-out set": tampered(tmp_path, arrays, config=json.dumps(config)),
        "samples_seen 2**63-1": tampered(tmp_path, arrays, samples_seen=np.int64(2**63 - 1)),
        "model input size 3": tampered(tmp_path, arrays, lstm__weight_ih_l0=np.zeros((64, 3))),
    }
    samples_before = window.latest_snapshot.samples_seen
    assert window.sessions.open_file(paths[case]) is False
    (title, text), = window.dialogs
    assert title == "Cannot open the session"
    assert "\n" not in text and len(text) < 400
    assert window.sessions.path is None and window.latest_snapshot.samples_seen == samples_before


def _save_in_window(qtbot, window, path: Path):
    with qtbot.waitSignal(window.sessions.sigJobDone, timeout=WAIT_MS) as done:
        window.sessions.save_to(path)
    return done.args[0]


def test_the_window_never_replaces_a_device_and_writes_through_a_symlink(qtbot, window, tmp_path: Path,
                                                                         saved: Path) -> None:
    device = "/dev/null"
    with pytest.raises(SessionError, match="a device"):  # checked here first: a regression never reaches /dev/null
        safe_save.resolve_target(device)
    before = os.stat(device)
    result = _save_in_window(qtbot, window, Path(device))
    assert result.error is not None and "not a regular file" in result.error
    assert [title for title, _ in window.dialogs] == ["Cannot save the session"]
    assert stat.S_ISCHR(os.stat(device).st_mode) and os.stat(device).st_ino == before.st_ino
    target = tmp_path / "target.npz"
    target.write_bytes(saved.read_bytes())
    link = tmp_path / "link.npz"
    link.symlink_to(target.name)
    assert _save_in_window(qtbot, window, link).error is None
    assert link.is_symlink() and load_session(target).samples_seen >= 200
    assert listing(tmp_path) == ["link.npz", "target.npz"]


def test_the_window_exports_refuse_a_fifo(qtbot, window, tmp_path: Path) -> None:
    fifo = tmp_path / "curves.csv"
    os.mkfifo(fifo)
    with qtbot.waitSignal(window.sessions.sigJobDone, timeout=WAIT_MS) as done:
        window.sessions.export_curves(fifo)
    assert "FIFO" in done.args[0].error
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["curves.csv"]


@pytest.mark.parametrize("argv, words", [
    (["--screenshot", "afile/x.png"], "afile is a file, not a folder"),
    (["--screenshot", ""], "a file name is needed"),
    (["--open", ""], "a file name is needed"),
    (["--screenshot", "x.png", "--open", LONG_NAME], "file name is too long"),
    (["--screenshot", LONG_NAME.replace(".npz", ".png")], "file name is too long"),
    (["--screenshot", "/dev/null"], "not a regular file"),
    (["--screenshot", "x.png", "--train", "-1"], "--train must be"),
    (["--size", "10x10"], "size must be between"),
    (["--train", "5"], "--train needs --screenshot"),
    (["--bogus"], "unrecognized arguments"),
])
def test_window_options_are_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                words: str) -> None:
    """Checked before Qt starts: nothing is trained or drawn, nothing is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    code, out, err = run_in_process(*argv)
    assert_one_line_exit_2(code, err, words)
    assert out == "" and listing(tmp_path) == ["afile"]


@pytest.mark.gui
def test_the_window_opens_a_session_with_an_unknown_bomb_member_in_bounded_memory(bombs: dict[str, Path],
                                                                                   tmp_path: Path) -> None:
    """--open of the session carrying 3 GiB of compressed zeros in an extra member: drawn, in bounded memory."""
    result = cli_child("--screenshot", "shot.png", "--open", str(bombs["extra member"]), cwd=tmp_path,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert result.peak_bytes < BOMB_PEAK, limits.size_text(result.peak_bytes)
    assert listing(tmp_path) == ["shot.png"]


@pytest.mark.gui
def test_the_window_refuses_many_events_before_it_draws(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A session with 20,000 events once hung the window after the screenshot: it is refused before any drawing."""
    path = tampered(tmp_path, arrays, name="events.npz",
                    history__events=json.dumps([[i, "x"] for i in range(20_000)]))
    result = cli_child("--screenshot", "shot.png", "--open", str(path), cwd=tmp_path,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert_one_line_exit_2(result.returncode, result.stderr, "history.events")
    assert listing(tmp_path) == ["events.npz"]


def test_long_runs_show_progress_under_quiet_on_a_terminal(tmp_path: Path) -> None:
    """stderr a terminal (a pseudo-terminal here): train --quiet still shows how far it is."""
    import pty

    leader, follower = pty.openpty()
    try:
        result = run_child([sys.executable, "-m", "lstm_explorer", "train", "--samples", "3000", "--quiet",
                            "--engine", "numpy"], cwd=tmp_path, stderr=follower)
        os.close(follower)
        follower = -1
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written has been read
            while chunk := os.read(leader, 65536):
                shown += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert result.returncode == 0
    assert b"3,000/3,000 samples" in shown


def test_a_live_change_that_would_not_fit_in_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's batch box goes to 65,536: at 32 bits that is gigabytes, refused like a bad value."""
    trainer = Trainer(TrainConfig(n_bits=32, heldout_size=64))
    monkeypatch.setattr(limits, "memory_available", lambda: 2 << 30)
    with pytest.raises(ConfigError, match=r"needs about .* of memory"):
        trainer.update(batch_size=65_536)
    assert trainer.config.batch_size == 1


def test_insights_never_replaces_a_fifo_among_its_files(tmp_path: Path, saved: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "length.csv")
    code, _, err = run_in_process("insights", str(saved), "--out", str(out))
    assert_one_line_exit_2(code, err, "length.csv", "FIFO")
    assert stat.S_ISFIFO(os.lstat(out / "length.csv").st_mode)
    assert not [p for p in out.iterdir() if p.name.endswith((".part", ".lock", ".tmp"))]


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "1" + "0" * 20], "--seed"),
    (["--seeds", str(limits.MAX_SWEEP_CELLS + 1), "--first-seed", "0"], "--seeds must be"),
    (["--csv", "/dev/null"], "not a regular file"),
    (["--csv", "."], "it is a folder"),
    (["--csv", LONG_NAME], "file name is too long"),
    (["--samples", "1" + "0" * 20], "--samples must be"),
])
def test_study_arguments_are_refused_before_any_seed_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          argv: list[str], words: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process("study", "--seeds", "2", "--samples", "100", *argv)
    assert_one_line_exit_2(code, err, words)
    assert "seed " not in out and listing(tmp_path) == []


def test_a_legal_model_too_large_for_this_process_is_refused_with_its_size(tmp_path: Path) -> None:
    """4,096 units (the most allowed): 537 MB of weights, in a process that may use less."""
    hidden = MAX_HIDDEN
    weights = {"lstm.weight_ih_l0": np.zeros((4 * hidden, 2)), "lstm.bias_ih_l0": np.zeros(4 * hidden),
               "lstm.bias_hh_l0": np.zeros(4 * hidden), "head.weight": np.zeros((1, hidden)),
               "head.bias": np.zeros(1)}
    big = deflated_zeros({"descr": "<f8", "fortran_order": False, "shape": (4 * hidden, hidden)},
                         4 * hidden * hidden * 8)
    write_zip(tmp_path / "wide.npz", [*npz_members(weights), ("lstm.weight_hh_l0.npy", big)])
    result = cli_child("eval", "wide.npz", cwd=tmp_path, address_space=1 << 30)
    assert_one_line_exit_2(result.returncode, result.stderr, "needs about", "is available here")
    assert result.peak_bytes < BOMB_PEAK
