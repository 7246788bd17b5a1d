"""The twin worker's network (ami_emulator/twin/network.py).

Without a boot: IMDS over its unix socket (IMDSv2 tokens enforced as the instance's MetadataOptions
say, role credentials, the endpoint switched off) and the qemu arguments (restricted user
networking, exactly two forwarded addresses).

With one worker boot through the AWS API (TCG; needs the worker disk, `bash scripts/setup.sh
--twin`): from a worker command, IMDSv1 is refused when tokens are required, IMDSv2 answers this
instance's id and region, `aws s3 cp` copies an object of the emulator's S3 over https with the
instance profile's credentials, `aws ssm get-parameter` reads a parameter, and nothing else answers: not qemu's host address, not the
emulator's port, not the slirp default gateway 10.0.2.2, not DNS, not the internet.

Run: python3 -m pytest -q scripts/emulator/test_twin_network.py
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator

import pytest

from ami_emulator.twin import network
from emulator_harness import Server, wait_for

PARAM = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
BOOT_TIMEOUT = 600


# -- IMDS without a VM ------------------------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("169.254.169.254", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def imds(path: str, method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    c = UnixHTTPConnection(path)
    try:
        c.request(method, url, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


MD = network.Metadata(instance_id="i-0123456789abcdef0", account_id="123456789012", region="eu-west-1",
                      availability_zone="eu-west-1a", image_id="ami-12345678", instance_type="m6i.large",
                      http_tokens="required", http_endpoint="enabled",
                      role_arn="arn:aws:iam::123456789012:role/ami-factory-b-1", profile_arn="arn:aws:iam::123456789012:instance-profile/p",
                      profile_id="AIPA0000000000000000")


@pytest.fixture()
def md_server(tmp_path: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    current = {"md": MD, "minted": 0}

    def mint(md: network.Metadata) -> network.Credentials:
        current["minted"] += 1
        now = datetime.datetime.now(datetime.timezone.utc)
        return network.Credentials(f"ASIA{current['minted']:016d}", "secret", "session-token", now + datetime.timedelta(hours=6), now)

    path = str(tmp_path / "imds.sock")
    server = network._listen(path, network.ImdsHandler, network.ImdsState(lambda: current["md"], mint))
    yield path, current
    server.shutdown()
    server.server_close()


def token(path: str, ttl: str = "60") -> str:
    status, body = imds(path, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200
    return body


def test_imdsv1_is_refused_when_tokens_are_required_and_served_when_optional(md_server: Any) -> None:
    path, current = md_server
    assert imds(path, "GET", "/latest/meta-data/instance-id")[0] == 401
    current["md"] = network.Metadata(**{**MD.__dict__, "http_tokens": "optional"})
    assert imds(path, "GET", "/latest/meta-data/instance-id") == (200, "i-0123456789abcdef0")


def test_imdsv2_token_rules(md_server: Any) -> None:
    path, _ = md_server
    t = token(path)
    assert imds(path, "GET", "/latest/meta-data/placement/region", {"X-aws-ec2-metadata-token": t}) == (200, "eu-west-1")
    assert imds(path, "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": t + "x"})[0] == 401
    assert imds(path, "PUT", "/latest/api/token")[0] == 400, "no TTL header"
    for ttl in ("0", "21601", "soon"):
        assert imds(path, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl})[0] == 400, ttl
    assert imds(path, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"})[0] == 403
    short = token(path, "1")
    time.sleep(1.2)  # the token's own TTL (one second) running out is what is tested
    assert imds(path, "GET", "/latest/meta-data/instance-id", {"X-aws-ec2-metadata-token": short})[0] == 401


def test_role_credentials_and_the_endpoint_switched_off(md_server: Any) -> None:
    path, current = md_server
    h = {"X-aws-ec2-metadata-token": token(path)}
    assert imds(path, "GET", "/latest/meta-data/iam/security-credentials/", h) == (200, "ami-factory-b-1")
    status, body = imds(path, "GET", "/latest/meta-data/iam/security-credentials/ami-factory-b-1", h)
    creds = json.loads(body)
    assert status == 200 and creds["Code"] == "Success" and creds["Type"] == "AWS-HMAC"
    assert creds["AccessKeyId"].startswith("ASIA") and creds["Token"] and creds["Expiration"].endswith("Z")
    again = json.loads(imds(path, "GET", "/latest/meta-data/iam/security-credentials/ami-factory-b-1", h)[1])
    assert again["AccessKeyId"] == creds["AccessKeyId"], "kept until close to their expiry"
    assert imds(path, "GET", "/latest/meta-data/iam/security-credentials/other-role", h)[0] == 404
    doc = json.loads(imds(path, "GET", "/latest/dynamic/instance-identity/document", h)[1])
    assert (doc["region"], doc["instanceId"], doc["accountId"]) == ("eu-west-1", "i-0123456789abcdef0", "123456789012")
    current["md"] = network.Metadata(**{**MD.__dict__, "role_arn": None, "profile_arn": None, "profile_id": None})
    assert imds(path, "GET", "/latest/meta-data/iam/security-credentials/", h)[0] == 404, "no instance profile"
    current["md"] = network.Metadata(**{**MD.__dict__, "http_endpoint": "disabled"})
    assert imds(path, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 403
    assert imds(path, "GET", "/latest/meta-data/instance-id", h)[0] == 403


def test_role_credentials_come_from_the_emulators_sts() -> None:
    creds = network.sts_credentials(network.Metadata(**{**MD.__dict__, "region": "us-east-1"}))
    assert creds.access_key_id.startswith("ASIA") and creds.secret_access_key and creds.token
    assert creds.expiration - creds.updated == datetime.timedelta(hours=6)


def _test_ca(folder: Any) -> str:
    """A throwaway CA in `folder` (ca.pem, ca.key), as build-worker-disk.sh makes the twin's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test twin CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return str(folder / "ca.pem")


def test_the_s3_relay_ends_tls_and_carries_parallel_large_responses_intact(tmp_path: Any) -> None:
    """Ten parallel 8 MiB GETs through the relay (as `aws s3 cp` fetches by ranges): every byte
    intact, the certificate valid for the endpoint name with the twin's CA only."""
    import hashlib
    import ssl
    import threading
    from http.server import ThreadingHTTPServer

    body = os.urandom(8 * 2**20)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            assert self.headers["Host"] == "s3.us-east-1.amazonaws.com"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    ca = _test_ca(tmp_path)
    vm = tmp_path / "vms" / "i-1"
    net = network.start(str(vm), lambda: MD, str(tmp_path), ["s3.amazonaws.com", "s3.us-east-1.amazonaws.com"], upstream.server_port)
    try:
        client = ssl.create_default_context(cafile=ca)
        digests: list[str] = []

        def get() -> None:
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.connect(str(vm / "s3.sock"))
            with client.wrap_socket(raw, server_hostname="s3.us-east-1.amazonaws.com") as tls:
                tls.sendall(b"GET /b/k HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := tls.recv(1 << 16):
                    data += chunk
            digests.append(hashlib.sha256(data.split(b"\r\n\r\n", 1)[1]).hexdigest())

        threads = [threading.Thread(target=get, daemon=True) for _ in range(10)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 90  # 10 s here; the relay of two threads per SSL object hung
        for t in threads:
            t.join(timeout=max(0, deadline - time.monotonic()))
        assert digests == [hashlib.sha256(body).hexdigest()] * 10
        assert sorted(os.listdir(vm)) == ["imds.sock", "s3.sock"], "no certificate or key file in the VM's folder"
        assert sorted(os.listdir(vm.parent)) == ["i-1"]
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(vm / "s3.sock"))
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="s3.us-east-1.amazonaws.com")
    finally:
        net.close()
        upstream.shutdown()


def test_the_qemu_network_is_restricted_with_two_forwards() -> None:
    args = network.netdev_args("/r/imds.sock", "/r/s3.sock", python="/usr/bin/python3")
    assert args[0] == "-netdev" and args[2:] == ["-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56"]
    opts = args[1].split(",")
    assert opts[0] == "user" and "restrict=on" in opts
    assert [o for o in opts if o.startswith(("guestfwd", "hostfwd", "smb", "tftp"))] == [
        f"guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/python3 -I -S {network.RELAY} /r/imds.sock",
        f"guestfwd=tcp:169.254.0.100:443-cmd:/usr/bin/python3 -I -S {network.RELAY} /r/s3.sock",
    ]
    with pytest.raises(ValueError, match="cannot hold"):
        network.netdev_args("/r/a,b/imds.sock", "/r/s3.sock")
    with pytest.raises(ValueError, match="outside"):
        network.check_address("10.0.2.100")


# -- one worker boot ----------------------------------------------------------------------------------------

def run(ssm: Any, iid: str, lines: list[str], timeout: float = 300) -> dict[str, Any]:
    cid = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": lines, "executionTimeout": ["600"]})["Command"]["CommandId"]

    def done() -> Any:
        out = ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
        return None if out["Status"] in ("Pending", "InProgress", "Delayed") else out

    return wait_for(done, timeout, f"command {cid}")


def test_a_worker_reaches_imds_and_s3_and_nothing_else(emu: Server) -> None:
    ssm, ec2, iam, s3 = emu.client("ssm"), emu.client("ec2"), emu.client("iam"), emu.client("s3")
    role = "twin-network-worker"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.create_instance_profile(InstanceProfileName=role)
    iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
    s3.create_bucket(Bucket="twin-network")
    s3.put_object(Bucket="twin-network", Key="dir/hello.txt", Body=b"hello from the emulator's S3\n")
    ssm.put_parameter(Name="/twin-network/secret", Value="from-ssm", Type="SecureString")
    image_id = ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m6i.large",
                            IamInstanceProfile={"Name": role},
                            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
                            )["Instances"][0]["InstanceId"]
    try:
        began = time.monotonic()
        wait_for(lambda: ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"],
                 BOOT_TIMEOUT, "the worker's agent to register")
        print(f"worker registered {time.monotonic() - began:.0f} s after RunInstances")
        port = emu.port
        r = run(ssm, iid, [
            "set -u",
            "md=http://169.254.169.254/latest",
            # IMDSv1: refused (HttpTokens required)
            "echo v1=$(curl -s -o /dev/null -w '%{http_code}' $md/meta-data/instance-id)",
            "t=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' $md/api/token)",
            "echo id=$(curl -sf -H \"X-aws-ec2-metadata-token: $t\" $md/meta-data/instance-id)",
            "echo region=$(curl -sf -H \"X-aws-ec2-metadata-token: $t\" $md/meta-data/placement/region)",
            # S3 over https, region and credentials from IMDS
            "aws s3 cp --only-show-errors s3://twin-network/dir/hello.txt /tmp/hello.txt && echo s3=$(cat /tmp/hello.txt | tr ' ' _)",
            # SSM (the interface endpoint), as the guest scripts read the build's secret parameters
            # (with --region, as they do: bookworm's CLI does not take its region from IMDS)
            "r=$(curl -sf -H \"X-aws-ec2-metadata-token: $t\" $md/meta-data/placement/region)",
            "echo ssm=$(aws ssm get-parameter --region $r --with-decryption --name /twin-network/secret --query Parameter.Value --output text)",
            # nothing else answers
            f"for url in http://169.254.0.1:{port}/ http://169.254.0.1/ http://10.0.2.2:{port}/ http://10.0.2.2/ "
            "https://1.1.1.1/ http://169.254.0.100/ http://169.254.169.254:8080/; do "
            "curl -s -m 5 -o /dev/null $url && echo reached=$url || echo blocked=$url; done",
            "getent hosts deb.debian.org && echo dns=resolved || echo dns=none",
            "echo s3host=$(getent hosts s3.us-east-1.amazonaws.com | cut -d' ' -f1)",
        ])
        out = r["StandardOutputContent"]
        assert r["Status"] == "Success", (out, r["StandardErrorContent"])
        facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith(("reached", "blocked")))
        assert facts["v1"] == "401"
        assert facts["id"] == iid and facts["region"] == "us-east-1"
        assert facts.get("s3") == "hello_from_the_emulator's_S3", r["StandardErrorContent"]
        assert facts.get("ssm") == "from-ssm", r["StandardErrorContent"]
        assert [line for line in out.splitlines() if line.startswith("reached")] == []
        assert len([line for line in out.splitlines() if line.startswith("blocked")]) == 7
        assert facts["dns"] == "none" and facts["s3host"] == "169.254.0.100"
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
