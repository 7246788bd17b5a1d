"""Eventually consistent image tags (control API `POST /_ami_factory/ec2/tag-lag`).

"The Amazon EC2 API follows an eventual consistency model ... the result of an API command you run
that affects your Amazon EC2 resources might not be immediately visible to all subsequent commands
you run" (Amazon EC2 API Reference, "Eventual consistency in the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). With `{"seconds": N}`
(N > 0), a CreateTags or DeleteTags that names an image (ami-…) takes effect N seconds after it
answered: until then DescribeImages and DescribeTags show the image's tags as they were, to every
caller, the writer too. Writes take effect in the order they were made (a later read never shows an
older state), checked when a later request arrives. `{"seconds": 0}` (and POST /_ami_factory/reset)
applies what is pending at once and stops lagging. Validation (EC2's 50 tags) happens when a write
takes effect: a refused one is logged, not answered.
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
        self.pending: collections.deque[tuple[float, Callable[[], Any]]] = collections.deque()

    def set(self, seconds: Any) -> None:
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0 or seconds > 600:
            raise ValueError("'seconds' must be a number from 0 to 600")
        with self.lock:
            self.seconds = float(seconds)
        if not seconds:
            self.apply_due(force=True)

    def defer(self, write: Callable[[], Any]) -> bool:
        with self.lock:
            if not self.seconds:
                return False
            self.pending.append((time.monotonic() + self.seconds, write))
            return True

    def apply_due(self, force: bool = False) -> None:
        while True:
            with self.lock:
                if not self.pending or (not force and self.pending[0][0] > time.monotonic()):
                    return
                _, write = self.pending.popleft()
            try:
                write()
            except Exception as e:  # noqa: BLE001 - a refused lagging write has no caller to answer
                logging.getLogger("ami_factory").warning("tag-lag: a deferred tag write failed: %r", e)


TAG_LAG = TagLag()


def patch_tag_lag() -> None:
    from moto.ec2.models.tags import TagBackend

    name = "ec2-tag-lag"
    for method in ("create_tags", "delete_tags"):
        _need(callable(getattr(TagBackend, method, None)), name, f"TagBackend.{method} missing")
    create_tags, delete_tags = TagBackend.create_tags, TagBackend.delete_tags

    def lagging(original: Callable[..., bool]) -> Callable[..., bool]:
        def write(self: Any, resource_ids: list[str], tags: dict[str, Any]) -> bool:
            ids, values = list(resource_ids), dict(tags)
            if any(str(r).startswith("ami-") for r in ids) and TAG_LAG.defer(lambda: original(self, ids, values)):
                return True
            return original(self, resource_ids, tags)

        return write

    TagBackend.create_tags = lagging(create_tags)  # type: ignore[method-assign]
    TagBackend.delete_tags = lagging(delete_tags)  # type: ignore[method-assign]
    APPLIED.append(name)
