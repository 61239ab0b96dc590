"""What ``pipepulse dashboard serve`` becomes once its checks pass: a small process that starts
the Streamlit server, says where it listens once it does, and waits on it.

``python -m cli.supervise ADDRESS PORT HOST -- STREAMLIT_COMMAND...`` (``os.execve`` from
``cli.commands.dashboard.cmd_serve``, same process id, so systemd, ``docker stop`` and a shell's
Ctrl-C reach it as before). It imports the standard library and ``cli.ports`` only: the command
line's own process, with every command's modules loaded (pandas, pyarrow, SQLAlchemy, boto3),
held about 166 MB resident for the server's whole life just to wait on it, a third of the
dashboard's memory (``bench.bench_dashboard`` counts the process and its children).
"""

from __future__ import annotations

import signal
import subprocess
import sys

from cli.ports import wait_listening

__all__ = ["main", "supervise"]


def supervise(cmd: list[str], address: str, port: int, host: str) -> int:
    """Run ``cmd`` (the server) to its end; the exit code ``pipepulse dashboard serve`` gives."""
    proc = subprocess.Popen(cmd)
    stopping: list[int] = []

    def _stop(signum, _frame):
        stopping.append(signum)
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        # said only once it listens, so a failed start never looks like a running dashboard
        if wait_listening(address, port, alive=lambda: proc.poll() is None):
            print(f"pipepulse dashboard on http://{host}:{port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        code = proc.wait()
        # stopped as asked (SIGTERM to this process, or to its whole process group as systemd and
        # `docker stop` on a shell entry point send it): a clean stop, not a failure
        return 0 if stopping and code in (0, -signal.SIGTERM) else code
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: python -m cli.supervise ADDRESS PORT HOST -- COMMAND...", file=sys.stderr)
        return 2
    address, port, host = argv[0], int(argv[1]), argv[2]
    return supervise(argv[4:], address, port, host)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
