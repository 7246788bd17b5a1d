"""Two lookups moto's server repeats on every request, answered once. Neither changes what any
request returns; together they were most of the emulator's CPU per call outside the call itself
(py-spy on bench/scale.ts, the 10 × 16 `up`: the emulator was the busiest process of the run).

- `moto.backends.list_of_moto_modules` lists moto's package folder (about 200 `isdir` calls) to
  route a request, under the dispatcher's one lock, so every request waited on the others' listing.
  The folder does not change while the server runs.
- `moto.core.responses.method_names_from_class` runs `inspect.getmembers` on the response class for
  every action. The classes are final once the patches are applied (before the first request)."""

from __future__ import annotations

import functools
from typing import Any

from .patching import APPLIED, _need


def patch_dispatch_lookups() -> None:
    import moto.backends as backends
    import moto.core.responses as responses

    name = "dispatch-lookups"
    _need(callable(getattr(backends, "list_of_moto_modules", None)), name, "moto.backends.list_of_moto_modules missing")
    _need(callable(getattr(responses, "method_names_from_class", None)), name,
          "moto.core.responses.method_names_from_class missing")

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    original = responses.method_names_from_class

    @functools.lru_cache(maxsize=None)
    def method_names_from_class(clazz: Any) -> frozenset[str]:
        # A frozenset answers `action in method_names` as the list does, in constant time.
        return frozenset(original(clazz))

    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
    APPLIED.append(name)
