#!/usr/bin/env python3
"""ami-factory's moto launcher: moto's server (all services, threaded werkzeug, like `moto_server`)
with the patches that close the moto gaps which matter to ami-factory, plus a small control API.

    python3 scripts/emulator/moto_server.py --port N [--host 127.0.0.1] [--exit-on-stdin-eof] [--verbose]

Prints exactly one line `ready http://HOST:PORT` on stdout once the socket accepts connections
(`--port 0` picks a free port and reports it there). Exits 0 on SIGTERM/SIGINT, and with
`--exit-on-stdin-eof` also when its stdin closes (the parent died: a watchdog for test harnesses).
MOTO_EC2_LOAD_DEFAULT_AMIS and MOTO_AMIS_PATH are read by moto itself, as moto_server does.

Every patch is a monkeypatch applied at start-up (nothing in site-packages is edited). Each one
first checks the moto internals it relies on (`_need`); a moto whose internals changed makes the
launcher exit non-zero at start-up naming the patch, never serve silently wrong answers.

The code is the package beside this file, ami_emulator/: one module per patched service, the
control API (ami_emulator/control.py, whose docstring lists the /_ami_factory/ endpoints) and the
entry point (ami_emulator/launcher.py).
"""

import sys

from ami_emulator.launcher import main  # this file's folder is on sys.path when run as a script

if __name__ == "__main__":
    sys.exit(main())
