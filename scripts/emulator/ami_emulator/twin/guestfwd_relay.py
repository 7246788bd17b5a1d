"""qemu's guestfwd `-cmd:` connector for the twin worker's network (twin/network.py).

qemu (libslirp) starts this once per TCP connection the guest opens to a forwarded address, with
the connection on stdin/stdout (one end of a socketpair; stderr too). It relays the bytes both ways
to the emulator's unix socket named by argv[1] (the VM's IMDS or S3 listener) and exits when both
sides are done. A listener that is gone closes the guest's connection: nothing else is reached.

Standard library only, started as `python -I -S`: one short-lived process per connection."""

import os
import socket
import sys
import threading


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main() -> int:
    # stderr is the guest's connection too: nothing may be written to it.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    guest = socket.socket(fileno=0)
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(sys.argv[1])
    except (OSError, IndexError):
        guest.close()
        return 1
    back = threading.Thread(target=pump, args=(upstream, guest), daemon=True)
    back.start()
    pump(guest, upstream)
    back.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
