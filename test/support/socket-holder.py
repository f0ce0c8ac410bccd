"""Holds a listening TCP socket the way systemd does for a .socket unit, and runs a daemon with it
as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=http, LISTEN_PID its own pid). A line "restart" on stdin
stops the daemon (SIGTERM), waits for it, and starts it again on the same socket.
Usage: python3 socket-holder.py HOST PORT COMMAND [ARGS...]"""
import os
import signal
import socket
import sys

host, port, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(511)


def start():
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="http", LISTEN_PID=str(os.getpid()))
        os.execvpe(argv[0], argv, env)
    return pid


child = start()


def stop_child_and_exit(_signum, _frame):
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
    sys.exit(0)


# Stopping the holder stops the daemon too: left behind it would keep the test's pipes open.
signal.signal(signal.SIGTERM, stop_child_and_exit)
print("started", child, flush=True)
for line in sys.stdin:
    if line.strip() == "restart":
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)
        child = start()
        print("restarted", child, flush=True)
os.kill(child, signal.SIGTERM)
os.waitpid(child, 0)
