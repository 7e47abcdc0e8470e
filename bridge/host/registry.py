"""The command registry: each host command is a small async free function.

Handlers are registered with :func:`command` in the modules of
``bridge.host.commands``; the server mirrors the registry into pygls at start.
The registry is plain Python so that ``bridge_info`` can list the commands
before the heavy imports are done, and so that ``make schemas`` can describe
every command without starting a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

if TYPE_CHECKING:
    from bridge.host.app import App


P = TypeVar("P")


class Params(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of strict command params: camelCase on the wire, unknown names rejected."""


class PassthroughParams(msgspec.Struct, rename="camel", kw_only=True):
    """Base of codex pass-through params: known fields checked, unknown ones kept.

    The handler receives a :class:`Forwarded` holding both.
    """


class Forwarded(msgspec.Struct, Generic[P], frozen=True):
    """What a pass-through command receives: the checked known fields and the raw params to forward."""

    known: P
    raw: dict[str, Any]


class NoParams(Params):
    """A command that takes no params."""


ProgressToken = int | str


class WorkDoneParams(Params, kw_only=True):
    """Params of a long command: ``workDoneToken`` asks for ``$/progress`` (docs/protocol.md §1.1)."""

    work_done_token: ProgressToken | None = None


class Result(msgspec.Struct, rename="camel", kw_only=True):
    """Base of command results: camelCase on the wire; ``None`` stays ``null``."""


Handler = Callable[["App", Any], Awaitable[Any]]


class Command(msgspec.Struct, frozen=True):
    name: str
    params: type[Any]
    result: Any
    handler: Handler
    doc: str


REGISTRY: dict[str, Command] = {}


def command(name: str, *, params: type[Any] = NoParams, result: Any = None) -> Callable[[Handler], Handler]:
    """Register ``handler(app, params) -> result`` as host command ``name``.

    ``result`` is the type of what the handler returns (used for the JSON
    Schema); the handler may return a msgspec Struct or plain data.
    """

    def decorator(handler: Handler) -> Handler:
        if name in REGISTRY:
            raise ValueError(f"command {name!r} registered twice")
        REGISTRY[name] = Command(name, params, result, handler, (handler.__doc__ or "").strip())
        return handler

    return decorator


def command_names() -> list[str]:
    import bridge.host.commands  # noqa: F401  (registers every command module)

    return sorted(REGISTRY)
