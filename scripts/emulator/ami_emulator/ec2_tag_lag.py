"""Eventually consistent image tags (control API `POST /_ami_factory/ec2/tag-lag`).

"The Amazon EC2 API follows an eventual consistency model ... the result of an API command you run
that affects your Amazon EC2 resources might not be immediately visible to all subsequent commands
you run" (Amazon EC2 API Reference, "Eventual consistency in the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). With `{"seconds": N}`
(N > 0), a CreateTags or DeleteTags that names an image (ami-…) takes effect N seconds after it
answered: until then DescribeImages and DescribeTags show the image's tags as they were, to every
caller, the writer too. Writes take effect in the order they were made (a later read never shows an
older state), checked when a later request arrives. `{"seconds": 0}` (and POST /_ami_factory/reset)
applies what is pending at once and stops lagging.

EC2 refuses a CreateTags that would take a resource past 50 user tags ("Tag restrictions":
"Maximum number of tags per resource – 50", "Tag your Amazon EC2 resources", Amazon EC2 User Guide,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions) with
TagLimitExceeded, in its answer: a lagged CreateTags is checked when it is made, against the tags
the image will have once every write before it has landed, and refused at once. A write that fails
anyway when it lands is logged (it has no caller to answer).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

from .patching import APPLIED, _need


class TagLag:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds = 0.0
        # (when it lands, the write, its kind "create"/"delete", resource ids, tags), in order.
        self.pending: collections.deque[tuple[float, Callable[[], Any], str, list[str], dict[str, Any]]] = collections.deque()

    def set(self, seconds: Any) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0 or seconds > 600:
            raise ValueError("'seconds' must be a number from 0 to 600")
        with self.lock:
            self.seconds = float(seconds)
        if not seconds:
            self.apply_due(force=True)

    def defer(self, write: Callable[[], Any], kind: str, ids: list[str], tags: dict[str, Any], current: Callable[[str], dict[str, Any]]) -> bool:
        """Queues `write` if lagging. A create that would take a resource past 50 user tags, once the
        writes before it land, is refused now (TagLimitExceeded), as EC2 answers it."""
        with self.lock:
            if not self.seconds:
                return False
            if kind == "create":
                for rid in ids:
                    if len([k for k in self._projected(rid, current) | set(tags) if not k.startswith("aws:")]) > MAX_USER_TAGS:
                        from moto.ec2.exceptions import TagLimitExceeded

                        raise TagLimitExceeded()
            self.pending.append((time.monotonic() + self.seconds, write, kind, ids, tags))
            return True

    def _projected(self, rid: str, current: Callable[[str], dict[str, Any]]) -> set[str]:
        """The keys `rid` will have once every pending write has landed (moto's delete_tags rules)."""
        tags = dict(current(rid))
        for _, _, kind, ids, values in self.pending:
            if rid not in ids:
                continue
            for k, v in values.items():
                if kind == "create":
                    tags[k] = v
                elif k in tags and (v is None or v == tags[k]):
                    tags.pop(k)
        return set(tags)

    def apply_due(self, force: bool = False) -> None:
        while True:
            with self.lock:
                if not self.pending or (not force and self.pending[0][0] > time.monotonic()):
                    return
                _, write, *_ = self.pending.popleft()
            try:
                write()
            except Exception as e:  # noqa: BLE001 - a refused lagging write has no caller to answer
                logging.getLogger("ami_factory").warning("tag-lag: a deferred tag write failed: %r", e)


TAG_LAG = TagLag()
# EC2's user tags per resource ("Tag restrictions", above).
MAX_USER_TAGS = 50


def patch_tag_lag() -> None:
    from moto.ec2.models.tags import TagBackend

    name = "ec2-tag-lag"
    for method in ("create_tags", "delete_tags"):
        _need(callable(getattr(TagBackend, method, None)), name, f"TagBackend.{method} missing")
    create_tags, delete_tags = TagBackend.create_tags, TagBackend.delete_tags

    def lagging(original: Callable[..., bool], kind: str) -> Callable[..., bool]:
        def write(self: Any, resource_ids: list[str], tags: dict[str, Any]) -> bool:
            ids, values = list(resource_ids), dict(tags)
            current = lambda rid: self.tags.get(rid, {})  # noqa: E731 - read under TAG_LAG's lock
            if any(str(r).startswith("ami-") for r in ids) and TAG_LAG.defer(lambda: original(self, ids, values), kind, ids, values, current):
                return True
            return original(self, resource_ids, tags)

        return write

    TagBackend.create_tags = lagging(create_tags, "create")  # type: ignore[method-assign]
    TagBackend.delete_tags = lagging(delete_tags, "delete")  # type: ignore[method-assign]
    APPLIED.append(name)
