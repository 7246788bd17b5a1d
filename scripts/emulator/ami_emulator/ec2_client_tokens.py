"""EC2 ClientToken idempotency for CopyImage and CreateVolume, which moto ignores: a retry with the
same token (an SDK retry after a lost response) gets the first call's resource back, the same token
with other parameters fails with IdempotentParameterMismatch, as in EC2. RunInstances' token is in
ec2_instances."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

from .patching import APPLIED, _need, _uses_action_result


# EC2 remembers a ClientToken per account, region and action: a retried call with the same token (an
# SDK retry after a lost response) returns the first call's resource instead of making a second one,
# and the same token with other parameters fails with IdempotentParameterMismatch. Here a token is
# remembered while its resource exists (after a moto reset or deletion it makes a new one).
CLIENT_TOKENS: dict[tuple[str, str, str, str], tuple[str, str]] = {}
CLIENT_TOKENS_LOCK = threading.Lock()


def _token_params(response: Any) -> str:
    """The request's parameters but ClientToken, to tell a retry from another request."""
    params = {k: v for k, v in (response.querystring or {}).items() if k not in ("ClientToken", "Action", "Version")}
    return json.dumps(params, sort_keys=True, default=str)


def patch_client_tokens() -> None:
    """moto ignores ClientToken on CopyImage and CreateVolume (RunInstances: see
    patch_run_instances_profile_and_token): a retried call after a lost response makes a second
    image or volume. Here both honour it as EC2 does."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    name = "client-tokens"
    _need(_uses_action_result(ElasticBlockStore.create_volume), name, "ElasticBlockStore.create_volume does not use ActionResult")
    _need(callable(getattr(AmisResponse, "copy_image", None)), name, "AmisResponse.copy_image missing")

    def idempotent(action: str, original: Callable[..., Any], exists: Callable[[Any, str], bool],
                   result: Callable[[Any, str], Any], resource_id: Callable[[Any], str]) -> Callable[..., Any]:
        def handler(self: Any) -> Any:
            token = self._get_param("ClientToken")
            if not token:
                return original(self)
            backend = self.ec2_backend
            key = (backend.account_id, backend.region_name, action, token)
            fingerprint = _token_params(self)
            with CLIENT_TOKENS_LOCK:
                known = CLIENT_TOKENS.get(key)
                if known and exists(backend, known[0]):
                    if known[1] != fingerprint:
                        raise EC2ClientError("IdempotentParameterMismatch",
                                             f"The client token {token} was used before with other parameters")
                    self.error_on_dryrun()
                    return result(backend, known[0])
                answer = original(self)
                CLIENT_TOKENS[key] = (resource_id(answer), fingerprint)
                return answer
        return handler

    def answer_id(answer: Any, field: str) -> str:
        data = answer._result
        return data[field] if isinstance(data, dict) else data.id

    _need(hasattr(ActionResult({}), "_result"), name, "ActionResult keeps its value elsewhere than ._result")

    AmisResponse.copy_image = idempotent(  # type: ignore[method-assign]
        "CopyImage", AmisResponse.copy_image,
        lambda backend, image_id: image_id in backend.amis,
        lambda backend, image_id: ActionResult({"ImageId": image_id}),
        lambda answer: answer_id(answer, "ImageId"))
    ElasticBlockStore.create_volume = idempotent(  # type: ignore[method-assign]
        "CreateVolume", ElasticBlockStore.create_volume,
        lambda backend, volume_id: volume_id in backend.volumes,
        lambda backend, volume_id: ActionResult(backend.volumes[volume_id]),
        lambda answer: answer_id(answer, "VolumeId"))
    APPLIED.append(name)
