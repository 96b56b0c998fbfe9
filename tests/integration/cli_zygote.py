"""Runs `semsearch` commands for the integration tests, each in a new process forked from one that has
already imported semsearch (torch, transformers): the command gets its own process, environment, working
directory, standard streams and exit status, as `python -m semsearch.cli` would, without paying seconds
of imports per command (about 60 commands in a run). The same pattern as Celery's prefork pool.

Run as ``python cli_zygote.py SOCKET``. One request a connection, one JSON line:
``{"args": [...], "env": {...}, "cwd": "...", "stdin": PATH, "stdout": PATH, "stderr": PATH}``.
The answer is two lines: the child's pid once it is forked, then its exit status (negative: killed by
that signal, like subprocess's returncode). Nothing here runs a torch operation before forking, so
every child starts its own thread pools.
"""

from __future__ import annotations

import json
import os
import socket
import sys

import transformers.models.bert.modeling_bert  # noqa: F401 - the shipped models' class, imported lazily by from_pretrained

from semsearch.cli import main  # the imports every command pays, paid once


def serve(path: str) -> dict:
    """Answers requests until one is for the child; returns that request in the child (never in the parent)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path + ".binding")
    server.listen(8)
    os.rename(path + ".binding", path)  # the client waits for this name: once it exists, connects are taken
    while True:
        conn, _ = server.accept()
        with conn:
            request = json.loads(conn.makefile("r", encoding="utf-8").readline())
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                server.close()
                return request
            conn.sendall(f"{pid}\n".encode())
            _, status = os.waitpid(pid, 0)
            try:
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:  # the test gave up on it (timeout): nothing to tell
                pass


def become(request: dict) -> None:
    """In the forked child: take the command's session, streams, directory and environment."""
    os.setsid()
    for fd, path, flags in ((0, request["stdin"], os.O_RDONLY),
                            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["semsearch", *request["args"]]


if __name__ == "__main__":
    command = serve(sys.argv[1])
    become(command)
    # click ends with sys.exit: the interpreter then shuts down as after `python -m semsearch.cli`.
    main.main(args=command["args"], prog_name="semsearch")
