"""ami-factory's moto launcher: moto's server (all services, threaded werkzeug, like `moto_server`)
with the patches that close the moto gaps which matter to ami-factory, plus a small control API.

The entry point behind scripts/emulator/moto_server.py (its docstring says how to run it):
apply_patches (in an order that matters), the WSGI app, the server and its ways to stop. The mode
(AMI_FACTORY_EMULATOR: recorded, the default, or twin) is said on stderr at start; the twin's
patches (twin/) come on top of the recorded mode's, and its run directory goes when the server stops."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from .dispatch_speed import patch_dispatch_lookups
from .ec2_boot import patch_boot_outcomes
from .ec2_client_tokens import patch_client_tokens
from .ec2_ebs import patch_detach_volume, patch_snapshot_in_use
from .ec2_image_attributes import patch_image_deprecation, patch_modify_image_attribute
from .ec2_image_lifecycle import patch_image_lifecycle
from .ssm_image_parameters import patch_ssm_image_parameters
from .ec2_image_model import patch_ami_model
from .ec2_images import patch_copy_image, patch_create_image, patch_register_image, patch_unique_image_names
from .ec2_instances import patch_instances, patch_run_instances_profile_and_token
from .ec2_public_images import patch_al2023_images, patch_describe_snapshots_owners
from .ec2_tag_lag import patch_tag_lag
from .iam import patch_iam_remove_role_from_instance_profile
from .middleware import AmiFactoryMiddleware
from .patching import PatchError
from .ssm_commands import patch_ssm_cancel_command, patch_ssm_commands
from .ssm_instances import patch_ssm_describe_instance_information, patch_ssm_send_command_targets
from .ssm_send_command_size import patch_ssm_send_command_size
from .twin import mode as twin_mode
from .twin import patch_twin
from .twin.store import MissingTool
from .ssm_parameters import patch_ssm_parameter_tiers


def apply_patches(mode: str = "recorded") -> None:
    patch_ami_model()
    patch_al2023_images()
    patch_describe_snapshots_owners()
    patch_snapshot_in_use()
    patch_detach_volume()
    patch_register_image()
    patch_copy_image()
    patch_create_image()
    patch_unique_image_names()
    patch_client_tokens()
    patch_image_deprecation()
    patch_instances()
    patch_run_instances_profile_and_token()
    patch_image_lifecycle()  # after patch_instances: wraps its run_instances
    patch_ssm_image_parameters()
    patch_boot_outcomes()
    patch_ssm_commands()
    patch_ssm_cancel_command()
    patch_ssm_send_command_size()  # issue 9: before ssm-send-command-targets, which checks the signature
    patch_ssm_send_command_targets()
    patch_ssm_describe_instance_information()
    patch_ssm_parameter_tiers()
    patch_modify_image_attribute()
    patch_iam_remove_role_from_instance_profile()
    patch_tag_lag()
    if mode == "twin":
        patch_twin()
    patch_dispatch_lookups()  # last: caches the response classes' methods as the patches left them


def build_app(mode: str = "recorded") -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    apply_patches(mode)
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto_server does
    return AmiFactoryMiddleware(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (a watchdog for a parent process)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    try:
        mode = twin_mode.mode()
        banner = twin_mode.start(mode)
    except (twin_mode.ModeError, MissingTool) as e:
        print(f"moto_server.py: {e}", file=sys.stderr)
        return 3
    print(f"moto_server.py: {banner}", file=sys.stderr, flush=True)
    try:
        app = build_app(mode)
    except PatchError as e:
        print(f"moto_server.py: {e}", file=sys.stderr)
        twin_mode.stop()
        return 3
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_port
    os.environ.setdefault("MOTO_PORT", str(port))

    stopping = threading.Event()

    def stop(reason: str) -> None:
        if stopping.is_set():
            return
        stopping.set()
        if args.verbose:
            print(f"moto_server.py: stopping ({reason})", file=sys.stderr)
        threading.Thread(target=server.shutdown, daemon=True).start()
        # A request stuck in moto must not keep the process alive.
        threading.Timer(10, lambda: (twin_mode.stop(), os._exit(0))).start()

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    if args.exit_on_stdin_eof:
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            stop("stdin closed")

        threading.Thread(target=watch_stdin, daemon=True).start()

    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(args.host, args.host)  # a connectable address
    host = host if ":" not in host else f"[{host}]"
    print(f"ready http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        twin_mode.stop()  # the twin's run directory goes with the server
    os._exit(0)  # daemon request threads and the kill timer must not delay the exit
