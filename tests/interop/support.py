"""What the interop check scripts share: recording PASS/FAIL checks and the
final tally, free loopback ports, and temporary directories removed at exit."""
import atexit
import shutil
import socket
import sys
import tempfile

RESULTS = []
_TEMP_DIRS = []


def check(name, ok, detail=""):
    RESULTS.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else "  -- " + str(detail)[:400]), flush=True)


def finish():
    """Prints "N passed, M failed" and exits non-zero on any failure (or none run)."""
    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 and passed > 0 else 1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temp_dir(prefix):
    """A fresh directory, removed when the script exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return path


@atexit.register
def _remove_temp_dirs():
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)
