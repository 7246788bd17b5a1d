"""The WSGI middleware in front of moto: a request under /_ami_factory/ goes to the control API
(control); every other one is recorded (recorder) and passed to moto unchanged."""

from __future__ import annotations

import gzip
import io
import json
import logging
import urllib.parse
from typing import Any, Callable

from .call_failures import CALL_FAILURES
from .ec2_tag_lag import TAG_LAG
from .control import CONTROL_PREFIX, HttpError, _control
from .recorder import RECORDER


def _credential_scope(environ: dict[str, Any], part: int) -> str | None:
    """A part of the SigV4 credential scope (key/date/region/service/aws4_request): 2 region, 3 service."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    try:
        return auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[part]
    except IndexError:
        return None


def _region_from_auth(environ: dict[str, Any]) -> str | None:
    return _credential_scope(environ, 2)


def _service_from_auth(environ: dict[str, Any]) -> str | None:
    return _credential_scope(environ, 3)


def _injected_failure(environ: dict[str, Any], body: bytes) -> tuple[str, bytes] | None:
    """The HTTP status and EC2 error document for a call a CallFailures rule fails, else None."""
    if not CALL_FAILURES.rules or "x-www-form-urlencoded" not in (environ.get("CONTENT_TYPE") or ""):
        return None
    action = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))).get("Action")
    rule = CALL_FAILURES.take(action, _region_from_auth(environ)) if action else None
    if rule is None:
        return None
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{rule["code"]}</Code>'
           f'<Message>{rule["message"]}</Message></Error></Errors><RequestID>injected</RequestID></Response>')
    return "400 Bad Request", doc.encode("utf-8")


class AmiFactoryMiddleware:
    """Any failure of the recorder is logged and never changes what moto answers."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        body = self._read_body(environ)
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):], body)
        try:
            self._record(environ, body)
        except Exception as e:  # pragma: no cover - the recorder must never break a call
            logging.getLogger("ami_factory").warning("recorder: %r", e)
        TAG_LAG.apply_due()  # lagging image tag writes whose time has come, before this call reads
        failure = _injected_failure(environ, body)
        if failure:
            start_response(failure[0], [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(failure[1])))])
            return [failure[1]]
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _record(self, environ: dict[str, Any], body: bytes) -> None:
        if (environ.get("HTTP_CONTENT_ENCODING") or "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        target = environ.get("HTTP_X_AMZ_TARGET")
        params: Any
        if target:
            action = target.rsplit(".", 1)[-1]
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                params = {"_raw": body.decode("utf-8", "replace")}
        else:
            ctype = environ.get("CONTENT_TYPE") or ""
            text = body.decode("utf-8", "replace") if "x-www-form-urlencoded" in ctype else ""
            if not text and environ.get("REQUEST_METHOD") == "GET":
                text = environ.get("QUERY_STRING") or ""
            params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
            action = params.get("Action")
            if not action:
                return
        if not RECORDER.wants(action, target):
            return
        RECORDER.add({
            "action": action,
            "target": target,
            "service": _service_from_auth(environ),
            "region": _region_from_auth(environ),
            "params": params,
        })

    @staticmethod
    def _control(environ: dict[str, Any], start_response: Callable[..., Any], path: str, body: bytes) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING") or ""))
        try:
            try:
                payload = json.loads(body.decode("utf-8")) if body.strip() else None
            except ValueError as e:
                raise HttpError(400, f"body is not JSON: {e}") from e
            status, result = _control(method, path.strip("/"), query, payload)
        except HttpError as e:
            status, result = e.status, {"error": str(e)}
        except Exception as e:  # moto's own errors (unknown instance, ...) and bugs
            code = getattr(e, "code", None)
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            result = {"error": f"{type(e).__name__}: {getattr(e, 'description', None) or e}"}
        data = json.dumps(result, default=str).encode("utf-8")
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]
