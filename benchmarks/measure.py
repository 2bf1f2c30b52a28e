"""Wall time and peak memory of one encode or decode call.

Peak memory of work done inside this process: the kernel's resident-set high-water mark (VmHWM) is reset before the
call (`/proc/self/clear_refs` <- "5", Linux >= 4.0) and read after it; we report the rise over the RSS at the start.
Where the reset is refused, VmHWM is cumulative and the figure is an upper bound (`method` says which).
Peak memory of a child process (the ffmpeg binary) is sampled from /proc/PID/status (VmHWM of the exec'd image)
every 10 ms while it runs. Its rusage is no use here: Linux carries the parent's high-water mark across
fork/vfork + exec into the child's ru_maxrss, so a child of a 1 GB Python process would report >= 1 GB.
A codec that runs a child reports both; the total is their sum (an upper bound of the joint peak).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measurement:
    seconds: float = 0.0
    rss_peak_rise_mib: float | None = None  # in-process peak above the RSS at the start
    child_peak_mib: float = 0.0  # peak RSS of child processes run during the call (sum over children)
    method: str = "vmhwm-reset"
    extra: dict = field(default_factory=dict)

    @property
    def peak_mib(self) -> float | None:
        if self.rss_peak_rise_mib is None:
            return self.child_peak_mib or None
        return self.rss_peak_rise_mib + self.child_peak_mib


_current: list[Measurement] = []


class measure:
    """Context manager: `with measure() as m: ...` then m.seconds, m.peak_mib."""

    def __enter__(self) -> Measurement:
        self.m = Measurement()
        if not _reset_hwm():
            self.m.method = "vmhwm-cumulative (upper bound)"
        self._rss0 = _status_kib("VmRSS")
        _current.append(self.m)
        self._t0 = time.perf_counter()
        return self.m

    def __exit__(self, *exc) -> None:
        self.m.seconds = time.perf_counter() - self._t0
        _current.remove(self.m)
        hwm = _status_kib("VmHWM")
        if hwm is not None and self._rss0 is not None:
            self.m.rss_peak_rise_mib = max(0, hwm - self._rss0) / 1024.0
        else:
            self.m.method = "unavailable"


def run_process(cmd: list[str], stdin_data: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run `cmd` feeding `stdin_data` through a pipe; returns (returncode, stdout, stderr).

    The child's peak RSS (sampled VmHWM) is added to every active `measure()`.
    """
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out: list[bytes] = []
    err: list[bytes] = []

    def pump(src, sink):
        sink.append(src.read())
        src.close()

    def feed():
        try:
            proc.stdin.write(stdin_data)
        except BrokenPipeError:
            pass  # the child died early; its stderr says why
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    peak = [0]
    done = threading.Event()

    def sample():
        path = f"/proc/{proc.pid}/status"
        while not done.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out)),
        threading.Thread(target=pump, args=(proc.stderr, err)),
    ]
    if stdin_data is not None:
        threads.append(threading.Thread(target=feed))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.wait()
    done.set()
    sampler.join()
    for m in _current:
        m.child_peak_mib += peak[0] / 1024.0
    return proc.returncode, out[0] if out else b"", err[0] if err else b""
