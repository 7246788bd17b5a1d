"""Proves the dispatch lookups answered once (ami_emulator/dispatch_speed.py) answer as moto's own:
in process against the unpatched functions, and on a launched server, where an action a patch adds,
moto's own actions and an unknown action still route as before.

Run: python3 -m pytest scripts/emulator
"""

from __future__ import annotations

import urllib.error
import urllib.request

from emulator_harness import Server


def test_cached_lookups_equal_moto_s_own() -> None:
    import moto.backends as backends
    import moto.core.responses as responses
    from moto.ec2.responses import EC2Response
    from moto.ssm.responses import SimpleSystemManagerResponse

    from ami_emulator import dispatch_speed

    modules = list(backends.list_of_moto_modules())
    names = {cls: set(responses.method_names_from_class(cls)) for cls in (EC2Response, SimpleSystemManagerResponse)}
    original_modules, original_names = backends.list_of_moto_modules, responses.method_names_from_class
    try:
        dispatch_speed.patch_dispatch_lookups()
        assert list(backends.list_of_moto_modules()) == modules and "ec2" in modules
        for cls, expected in names.items():
            assert set(responses.method_names_from_class(cls)) == expected
            assert responses.method_names_from_class(cls) is responses.method_names_from_class(cls)  # computed once
    finally:
        backends.list_of_moto_modules, responses.method_names_from_class = original_modules, original_names
        dispatch_speed.APPLIED.remove("dispatch-lookups")


def test_server_routes_actions_as_before(server: Server) -> None:
    assert "dispatch-lookups" in server.ok("GET", "health")["patches"]
    ec2, ssm = server.client("ec2"), server.client("ssm")
    assert ec2.describe_regions()["Regions"]
    assert "Commands" in ssm.list_commands()  # another service, another response class
    assert _raw_ec2(server, "DescribeRegions")[0] == 200
    status, body = _raw_ec2(server, "DescribeNoSuchThing")  # an action no response class has
    assert status == 500, body  # moto: NotImplementedError, as without the patch


def _raw_ec2(server: Server, action: str) -> tuple[int, str]:
    """A query-protocol EC2 call by hand (botocore refuses an action its model lacks)."""
    auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0"
    req = urllib.request.Request(server.endpoint + "/", data=f"Action={action}&Version=2016-11-15".encode(), method="POST",
                                 headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
