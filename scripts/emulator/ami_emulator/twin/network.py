"""The twin worker's network: what a worker in a private subnet with an S3 gateway endpoint and an SSM
interface endpoint reaches, the instance metadata service, S3 and SSM, and nothing else. (The guest
scripts use S3 for the image recipe's `aws s3 cp` and SSM for the build's secret parameters; a real
worker needs SSM anyway, its agent is managed through it.)

qemu side (worker_disk.qemu_argv): user networking with `restrict=on` (no packet of the guest is
routed to the host or beyond) on a link-local network, and two guestfwd rules whose `-cmd:`
connector (twin/guestfwd_relay.py, one process per connection) relays to a unix socket in the VM's
folder:

  169.254.169.254:80   IMDS             -> imds.sock: ImdsServer (below), this instance's metadata
  169.254.0.100:443    S3 and SSM       -> s3.sock: S3Relay, TLS ended with a certificate of the
                       (endpoints)         twin's CA, then plain HTTP to the emulator (which answers
                                           by the request's signed service)

The worker disk (twin_worker/build-worker-disk.sh) gets its address by DHCP from qemu, maps S3's
endpoint names (s3.amazonaws.com, s3.<region>.amazonaws.com, ssm.<region>.amazonaws.com) to
169.254.0.100 in /etc/hosts (the stand-in for the gateway endpoint's route, the interface
endpoint's private DNS and the VPC resolver), trusts the twin's CA, and sets
path-style S3 addressing in /root/.aws/config (a hosts file cannot list every bucket's virtual-host
name). The AWS CLI then finds its credentials in IMDS (its region too in newer CLIs; bookworm's
2.9 uses S3's global name without one, and the guest scripts pass --region) and talks https to the real
endpoint name, as on EC2. Why TLS and not an endpoint override to plain http: the CLI of Debian
bookworm (2.9) has no endpoint setting in its config file, and an override would be a setting a
real worker does not have.

The network is link-local (169.254.0.0/16) because qemu forwards only addresses inside its user
network, and IMDS is at 169.254.169.254; the worker's own address is 169.254.0.15 (EC2 gives a
VPC address; nothing on the worker depends on which).

IMDS, as EC2 documents it ("Use the Instance Metadata Service to access instance metadata",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html;
"Use IMDSv2", .../instance-metadata-v2-how-it-works.html; "Retrieve security credentials from
instance metadata", .../instance-metadata-security-credentials.html):
- PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1-21600) answers a session
  token; without the header, or out of range: 400. A PUT carrying X-Forwarded-For is refused (403:
  IMDSv2 does not hand tokens through a proxy).
- Every GET with X-aws-ec2-metadata-token needs a valid, unexpired token of this instance (401
  otherwise). Without a token: served (IMDSv1) when the instance's HttpTokens is optional, 401 when
  it is required (RunInstances MetadataOptions, read live, so ModifyInstanceMetadataOptions counts).
- HttpEndpoint disabled: every request is refused (403).
- meta-data/instance-id, ami-id, instance-type, placement/region, placement/availability-zone,
  local-ipv4, mac, hostname, iam/info, iam/security-credentials/ (the profile's role name, 404 with
  no profile) and iam/security-credentials/<role>: temporary credentials of that role minted by
  the emulator's STS (AssumeRole, session name = the instance id), renewed before they expire;
  dynamic/instance-identity/document.
- HttpPutResponseHopLimit cannot be modelled: slirp ends the guest's TCP connection inside qemu, so
  no IP packet with a TTL travels from IMDS to the guest; the worker itself is the only client (its
  chroots have no network, scripts/guest/lib), which a hop limit of 1 allows.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import select
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guestfwd_relay.py")
NETWORK = "169.254.0.0/16"
GATEWAY = "169.254.0.1"  # qemu's own address (DHCP server, default route): restricted, answers nothing else
DNS = "169.254.0.3"  # qemu's DNS forwarder: unreachable with restrict=on (the worker uses /etc/hosts)
GUEST_ADDRESS = "169.254.0.15"
IMDS_ADDRESS = "169.254.169.254"
S3_ADDRESS = "169.254.0.100"
TOKEN_TTL_MAX = 21600


def netdev_args(imds_sock: str, s3_sock: str, s3_address: str = S3_ADDRESS, python: str = sys.executable,
                mac: str = "52:54:00:12:34:56") -> list[str]:
    """qemu's arguments for the worker's NIC: a virtio-net device on restricted user networking with
    the IMDS and S3 guestfwd rules (each connection spawns guestfwd_relay.py to the socket)."""
    for path in (imds_sock, s3_sock, python, RELAY):
        if "," in path or " " in path:
            raise ValueError(f"a path in qemu's -netdev option cannot hold ',' or ' ': {path!r}")
    relay = f"{python} -I -S {RELAY}"
    netdev = ",".join([
        "user", "id=net0", "restrict=on", f"net={NETWORK}", f"host={GATEWAY}", f"dns={DNS}", f"dhcpstart={GUEST_ADDRESS}",
        "hostname=ami-factory-worker",
        f"guestfwd=tcp:{IMDS_ADDRESS}:80-cmd:{relay} {imds_sock}",
        f"guestfwd=tcp:{s3_address}:443-cmd:{relay} {s3_sock}",
    ])
    return ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=net0,mac={mac}"]


# -- listeners on unix sockets ------------------------------------------------------------------------

class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


def _listen(path: str, handler: type[socketserver.BaseRequestHandler], context: Any) -> _UnixServer:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = _UnixServer(path, handler)
    server.context = context  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True,
                     name=f"twin-net {os.path.basename(path)}").start()
    return server


# -- IMDS -----------------------------------------------------------------------------------------------

@dataclass
class Metadata:
    """What IMDS says about one instance, read from moto at each request."""
    instance_id: str
    account_id: str
    region: str
    availability_zone: str
    image_id: str
    instance_type: str
    http_tokens: str  # "optional" | "required"
    http_endpoint: str  # "enabled" | "disabled"
    role_arn: str | None  # the instance profile's role
    profile_arn: str | None
    profile_id: str | None


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str
    token: str
    expiration: datetime.datetime
    updated: datetime.datetime


@dataclass
class ImdsState:
    metadata: Callable[[], Metadata]
    mint: Callable[[Metadata], Credentials]  # the role's temporary credentials
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    credentials: Credentials | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(42)
        with self.lock:
            now = time.monotonic()
            self.tokens = {t: e for t, e in self.tokens.items() if e > now}
            self.tokens[token] = now + ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def role_credentials(self, md: Metadata) -> Credentials:
        """The role's credentials, renewed when less than 15 minutes are left (EC2 makes new
        credentials available at least five minutes before the old ones expire)."""
        with self.lock:
            c = self.credentials
            now = datetime.datetime.now(datetime.timezone.utc)
            if c is None or c.expiration - now < datetime.timedelta(minutes=15):
                c = self.credentials = self.mint(md)
            return c


def _iso(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImdsHandler(BaseHTTPRequestHandler):
    server_version = "EC2ws"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def address_string(self) -> str:
        return "guest"

    @property
    def state(self) -> ImdsState:
        return self.server.context  # type: ignore[attr-defined]

    def _send(self, status: int, body: str = "", content_type: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int) -> None:
        reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}[status]
        self._send(status, f"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>{status} - {reason}</title></head>"
                           f"<body><h1>{status} - {reason}</h1></body></html>\n", "text/html")

    def _metadata(self) -> Metadata | None:
        try:
            return self.state.metadata()
        except Exception:  # the instance is gone (terminated): nothing to answer
            return None

    def do_PUT(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        md = self._metadata()
        if md is None or md.http_endpoint != "enabled":
            return self._error(403)
        if self.path.split("?")[0] != "/latest/api/token":
            return self._error(405)
        if self.headers.get("X-Forwarded-For") is not None:
            return self._error(403)
        raw = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl = int(raw or "")
        except ValueError:
            return self._error(400)
        if not 1 <= ttl <= TOKEN_TTL_MAX:
            return self._error(400)
        self._send(200, self.state.new_token(ttl), headers={"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})

    def do_GET(self) -> None:  # noqa: N802
        md = self._metadata()
        if md is None or md.http_endpoint != "enabled":
            return self._error(403)
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is not None:
            if not self.state.token_valid(token):
                return self._error(401)
        elif md.http_tokens == "required":
            return self._error(401)
        answer = self._answer(md, self.path.split("?")[0])
        if answer is None:
            return self._error(404)
        body, content_type = answer
        self._send(200, body, content_type)

    do_HEAD = do_GET

    def _answer(self, md: Metadata, path: str) -> tuple[str, str] | None:
        role = md.role_arn.split("/")[-1] if md.role_arn else None
        zone = md.availability_zone
        meta = {
            "ami-id": md.image_id, "instance-id": md.instance_id, "instance-type": md.instance_type,
            "local-ipv4": GUEST_ADDRESS, "mac": "52:54:00:12:34:56",
            "hostname": f"ip-{GUEST_ADDRESS.replace('.', '-')}.ec2.internal",
            "local-hostname": f"ip-{GUEST_ADDRESS.replace('.', '-')}.ec2.internal",
            "placement/region": md.region, "placement/availability-zone": zone,
        }
        text = "text/plain"
        if path in ("/latest", "/latest/"):
            return "dynamic\nmeta-data\n", text
        if path in ("/latest/meta-data", "/latest/meta-data/"):
            return "ami-id\nhostname\niam/\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\n", text
        if path in ("/latest/meta-data/placement", "/latest/meta-data/placement/"):
            return "availability-zone\nregion\n", text
        key = path[len("/latest/meta-data/"):] if path.startswith("/latest/meta-data/") else None
        if key is not None and key.rstrip("/") in meta:
            return meta[key.rstrip("/")], text
        if key in ("iam", "iam/"):
            return ("info\nsecurity-credentials/\n", text) if role else None
        if key == "iam/info" and role:
            return json.dumps({"Code": "Success", "LastUpdated": _iso(datetime.datetime.now(datetime.timezone.utc)),
                               "InstanceProfileArn": md.profile_arn, "InstanceProfileId": md.profile_id}, indent=2), text
        if key in ("iam/security-credentials", "iam/security-credentials/"):
            return (role, text) if role else None
        if key is not None and key.startswith("iam/security-credentials/") and role and key.rstrip("/").split("/")[-1] == role:
            c = self.state.role_credentials(md)
            return json.dumps({"Code": "Success", "LastUpdated": _iso(c.updated), "Type": "AWS-HMAC",
                               "AccessKeyId": c.access_key_id, "SecretAccessKey": c.secret_access_key,
                               "Token": c.token, "Expiration": _iso(c.expiration)}, indent=2), text
        if path == "/latest/dynamic/instance-identity/document":
            return json.dumps({"accountId": md.account_id, "architecture": "x86_64", "availabilityZone": zone,
                               "imageId": md.image_id, "instanceId": md.instance_id, "instanceType": md.instance_type,
                               "privateIp": GUEST_ADDRESS, "region": md.region, "version": "2017-09-30"}, indent=2), "text/plain"
        return None


def moto_metadata(instance: Any) -> Callable[[], Metadata]:
    """A reader of IMDS's view of a moto instance (its metadata options and profile as they are now)."""
    def read() -> Metadata:
        backend = instance.ec2_backend
        if instance.id not in {i.id for i in backend.all_instances()} or instance.state_code in (32, 48):
            raise LookupError(f"{instance.id} is gone")
        options = instance.metadata_options
        association = backend.iam_instance_profile_associations.get(instance.id)
        profile = association.iam_instance_profile if association is not None else None
        roles = list(getattr(profile, "roles", None) or [])
        return Metadata(
            instance_id=instance.id, account_id=backend.account_id, region=backend.region_name,
            availability_zone=instance.placement, image_id=instance.image_id, instance_type=instance.instance_type,
            http_tokens=options.http_tokens, http_endpoint=options.http_endpoint,
            role_arn=roles[0].arn if roles else None, profile_arn=getattr(profile, "arn", None), profile_id=getattr(profile, "id", None))
    return read


def sts_credentials(md: Metadata) -> Credentials:
    """The role's temporary credentials from the emulator's STS, as EC2 gets them for an instance
    profile (AssumeRole by the EC2 service; the session is named after the instance)."""
    from moto.utilities.utils import get_partition
    from moto.sts.models import sts_backends

    assert md.role_arn is not None
    duration = 6 * 3600  # EC2 rotates instance credentials every few hours
    role = sts_backends[md.account_id][get_partition(md.region)].assume_role(
        region_name=md.region, role_session_name=md.instance_id, role_arn=md.role_arn, policy="", duration=duration, external_id="")
    now = datetime.datetime.now(datetime.timezone.utc)
    return Credentials(role.access_key_id, role.secret_access_key, role.session_token, now + datetime.timedelta(seconds=duration), now)


# -- S3: TLS ended here, plain HTTP to the emulator ----------------------------------------------------

_TLS: dict[tuple[str, str], ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def tls_context(ca_dir: str, names: list[str]) -> ssl.SSLContext:
    """A server context whose certificate (made once per process, signed by the twin's CA) names
    every S3 endpoint name of the worker disk's /etc/hosts."""
    key = (ca_dir, "\n".join(names))
    with _TLS_LOCK:
        if key in _TLS:
            return _TLS[key]
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        with open(os.path.join(ca_dir, "ca.pem"), "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        with open(os.path.join(ca_dir, "ca.key"), "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), password=None)
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_cert.subject)
                .public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        # ssl loads a certificate from files only: written, loaded, removed at once (no file is left
        # in the VMs' folders, which terminate must leave empty).
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="twin-tls-") as tmp:
            cert_path, key_path = os.path.join(tmp, "s3-cert.pem"), os.path.join(tmp, "s3-key.pem")
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            with open(cert_path, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(cert_path, key_path)
        _TLS[key] = context
        return context


@dataclass
class S3Upstream:
    tls: ssl.SSLContext
    port: int  # the emulator's own HTTP port


class S3RelayHandler(socketserver.BaseRequestHandler):
    """One guest connection: TLS ended here, the bytes relayed to the emulator's HTTP port. One
    thread per connection does both directions (select): an SSL object must not be read and written
    from two threads at once (OpenSSL corrupts its records: seen as DECRYPTION_FAILED_OR_BAD_RECORD_MAC
    in the guest). HTTP is request then response, so a blocking sendall in one direction cannot wait
    on the other."""

    def handle(self) -> None:
        up: S3Upstream = self.server.context  # type: ignore[attr-defined]
        try:
            guest = up.tls.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            emulator = socket.create_connection(("127.0.0.1", up.port), timeout=30)
            emulator.settimeout(None)
        except OSError:
            guest.close()
            return
        guest_open = True
        try:
            while True:
                # Bytes already decrypted inside the SSL object are not visible to select.
                ready = [guest] if guest_open and guest.pending() else \
                    select.select([guest, emulator] if guest_open else [emulator], [], [])[0]
                if guest in ready:
                    data = guest.recv(65536)
                    if data:
                        emulator.sendall(data)
                    else:
                        guest_open = False
                        emulator.shutdown(socket.SHUT_WR)
                if emulator in ready:
                    data = emulator.recv(65536)
                    if not data:
                        break
                    guest.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            emulator.close()
            try:
                guest.close()
            except OSError:
                pass


# -- one worker's network --------------------------------------------------------------------------------

@dataclass
class WorkerNetwork:
    imds: _UnixServer
    s3: _UnixServer

    def close(self) -> None:
        for server in (self.imds, self.s3):
            server.shutdown()
            server.server_close()


def sockets(folder: str) -> tuple[str, str]:
    """The IMDS and S3 sockets of a VM whose files are in `folder` (worker_disk.qemu_argv's default)."""
    return os.path.join(folder, "imds.sock"), os.path.join(folder, "s3.sock")


def start(folder: str, metadata: Callable[[], Metadata], ca_dir: str, s3_names: list[str], emulator_port: int,
          mint: Callable[[Metadata], Credentials] = sts_credentials) -> WorkerNetwork:
    """The IMDS and S3 listeners of one worker VM (before its qemu starts)."""
    os.makedirs(folder, exist_ok=True)
    imds_path, s3_path = sockets(folder)
    tls = tls_context(ca_dir, s3_names)
    imds = _listen(imds_path, ImdsHandler, ImdsState(metadata, mint))
    try:
        s3 = _listen(s3_path, S3RelayHandler, S3Upstream(tls, emulator_port))
    except OSError:
        imds.shutdown()
        imds.server_close()
        raise
    return WorkerNetwork(imds, s3)


def check_address(address: str) -> str:
    """The S3 address of a worker disk's manifest, if it is inside the worker's network."""
    if ipaddress.ip_address(address) not in ipaddress.ip_network(NETWORK):
        raise ValueError(f"the worker disk's S3 address {address} is outside the twin worker's network {NETWORK}")
    return address
