"""`semsearch` commands as the integration tests run them: each in its own process (see cli_zygote.py),
with the test's environment, working directory and standard input, and its output and exit status back
as a subprocess.CompletedProcess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import json
from pathlib import Path

ZYGOTE = Path(__file__).with_name("cli_zygote.py")


class CommandLine:
    """The forking server of cli_zygote.py, started on first use and stopped by ``close``."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="semsearch-cli-"))
        self.socket_path = str(self.folder / "zygote.sock")
        self.proc: subprocess.Popen | None = None

    def _started(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log = open(self.folder / "zygote.log", "w")
        self.proc = subprocess.Popen([sys.executable, str(ZYGOTE), self.socket_path], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.socket_path):
            assert self.proc.poll() is None, (self.folder / "zygote.log").read_text()
            assert time.monotonic() < deadline, "the command server did not start in 120 s"
            time.sleep(0.05)

    def run(self, args: list[str], *, input: str | None, env: dict, cwd, timeout: float) -> subprocess.CompletedProcess:
        self._started()
        work = Path(tempfile.mkdtemp(dir=self.folder))
        stdin = work / "stdin"
        stdin.write_text(input or "", encoding="utf-8")
        request = {"args": list(args), "env": env, "cwd": str(cwd or os.getcwd()), "stdin": str(stdin),
                   "stdout": str(work / "stdout"), "stderr": str(work / "stderr")}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.socket_path)
            conn.sendall((json.dumps(request) + "\n").encode())
            conn.settimeout(timeout)
            answer = conn.makefile("r", encoding="utf-8")
            forked = answer.readline()
            if not forked:
                raise RuntimeError("the command server failed: " + (self.folder / "zygote.log").read_text()[-3000:])
            pid = int(forked)
            try:
                returncode = int(answer.readline())
            except (TimeoutError, socket.timeout):
                os.killpg(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(["semsearch", *args], timeout) from None
        result = subprocess.CompletedProcess(["semsearch", *args], returncode,
                                             (work / "stdout").read_text(encoding="utf-8"),
                                             (work / "stderr").read_text(encoding="utf-8"))
        for name in ("stdin", "stdout", "stderr"):
            (work / name).unlink()
        work.rmdir()
        return result

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        for leftover in self.folder.glob("**/*"):
            if leftover.is_file() or leftover.is_socket():
                leftover.unlink()
