"""A client program run in another process for a test (a group member in Java, Go or Node):
its standard output read line by line in a thread, its standard error kept in a log file."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path


class ProgramProcess:
    """Runs ``command``; each line of its standard output goes to :meth:`on_line` (in the
    reader thread). :meth:`kill` ends the process and releases its pipes and log."""

    def __init__(self, command, name: str, log_path, stdin=None, env=None):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=self._log, env=env)
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()

    def on_line(self, line: bytes) -> None:
        raise NotImplementedError

    def _read(self):
        for line in self.process.stdout:
            self.on_line(line.rstrip(b"\n"))

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-3000:]

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(5)
        self.process.stdout.close()
        self._log.close()
