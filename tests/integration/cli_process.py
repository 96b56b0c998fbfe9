"""`semsearch` commands as the integration tests run them: each in its own process (see cli_zygote.py),
with the test's environment, working directory and standard input, and its output and exit status back
as a subprocess.CompletedProcess. The Celery workers, `serve` and the commands a test kills midway are
started as real `python -m semsearch.cli` processes by the tests themselves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZYGOTE = Path(__file__).with_name("cli_zygote.py")


class CommandLine:
    """The forking server of cli_zygote.py: started by ``start`` (or on first use), stopped by ``close``."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="semsearch-cli-"))
        self.socket_path = str(self.folder / "zygote.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if os.path.exists(self.socket_path):  # a server that died left its socket: the new one binds afresh
            os.unlink(self.socket_path)
        with open(self.folder / "zygote.log", "w") as log:
            self.proc = subprocess.Popen([sys.executable, str(ZYGOTE), self.socket_path], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.socket_path):  # the server names its socket once it listens
            assert self.proc.poll() is None, (self.folder / "zygote.log").read_text()
            assert time.monotonic() < deadline, "the command server did not start in 120 s"
            time.sleep(0.05)

    def run(self, args: list[str], *, input: str | None, env: dict, cwd, timeout: float) -> subprocess.CompletedProcess:
        self.start()
        work = Path(tempfile.mkdtemp(dir=self.folder))
        stdin, stdout, stderr = work / "stdin", work / "stdout", work / "stderr"
        stdin.write_text(input or "", encoding="utf-8")
        request = {"args": list(args), "env": env, "cwd": str(cwd or os.getcwd()), "stdin": str(stdin),
                   "stdout": str(stdout), "stderr": str(stderr)}
        command = ["semsearch", *args]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(self.socket_path)
                conn.sendall((json.dumps(request) + "\n").encode())
                with conn.makefile("r", encoding="utf-8") as answer:
                    forked = ""
                    try:
                        forked = answer.readline()
                        if not forked:
                            raise RuntimeError("the command server failed: "
                                               + (self.folder / "zygote.log").read_text()[-3000:])
                        returncode = int(answer.readline())
                    except (TimeoutError, socket.timeout):
                        if forked:
                            try:
                                os.killpg(int(forked), signal.SIGKILL)
                            except ProcessLookupError:  # it ended at the deadline
                                pass
                        raise subprocess.TimeoutExpired(command, timeout, output=_read(stdout),
                                                        stderr=_read(stderr)) from None
            return subprocess.CompletedProcess(command, returncode, _read(stdout), _read(stderr))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""
