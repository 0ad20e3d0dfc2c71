"""Validation of what a session holds.

A ``chat`` session holds Chat Completions messages, checked strictly so that
``session.get_messages()`` can be sent to the API unchanged. An ``items`` session holds
arbitrary JSON objects (Responses-API input items, for instance) stored byte for byte.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, Final, Literal, TypeAlias, TypeVar

from ailib.errors import InvalidMessage

__all__ = (
    "CHAT",
    "ITEMS",
    "KINDS",
    "MEMORY",
    "Message",
    "SessionKind",
    "all_objects",
    "check_json_object",
    "check_message",
    "check_stored_message",
    "copy_json",
    "is_plain_text",
    "json_copy",
    "make_message",
    "plain_text_prefix",
)

Message: TypeAlias = dict[str, Any]
_T = TypeVar("_T")
SessionKind: TypeAlias = Literal["chat", "items", "memory"]
CHAT: Final = "chat"
ITEMS: Final = "items"
#: A user's long-term memory (``store.memory(user_id)``): metadata only, never listed.
MEMORY: Final = "memory"
KINDS: Final = (CHAT, ITEMS, MEMORY)

_COMMON: Final = frozenset({"role", "content", "name"})
_ALLOWED_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "system": _COMMON,
    "developer": _COMMON,
    "user": _COMMON,
    "assistant": _COMMON | {"tool_calls", "refusal", "audio", "function_call"},
    "tool": frozenset({"role", "content", "tool_call_id"}),
}


def make_message(role: str, content: Any, fields: Mapping[str, Any]) -> Message:
    """The dict ``add_message(role, content, **fields)`` appends (unchecked); an assistant
    message that only makes tool calls carries no ``content`` key."""
    message: Message = {"role": role, "content": content, **fields}
    if content is None and role == "assistant":
        message.pop("content")
    return message


def check_message(message: object, kind: str = CHAT) -> Message:
    """Return ``message`` if it is valid for a session of ``kind``; raise InvalidMessage if not.

    Every message must be a JSON object that comes back unchanged from any backend: str keys;
    values None, bool, int, finite float, str (UTF-8 encodable: no lone surrogates), lists and
    such objects."""
    _check_shape(message, kind)
    assert isinstance(message, dict)
    _check_json(message, "message")
    return message


def check_json_object(message: object) -> Message:
    """``message`` if it is a dict that JSON carries unchanged (the rule of an ``items``
    session); raise InvalidMessage if not."""
    if not isinstance(message, dict):
        raise InvalidMessage(f"a message must be a dict, got {type(message).__name__}")
    _check_json(message, "message")
    return message


def json_copy(message: object) -> Message:
    """A deep copy of ``message``, built while checking it as :func:`check_json_object` does
    (same errors): one walk does both. The copy shares nothing with ``message``."""
    if not isinstance(message, dict):
        raise InvalidMessage(f"a message must be a dict, got {type(message).__name__}")
    try:
        return _copied_dict(message)
    except _NotPlain:
        # Something to refuse, or a subclass of a JSON type: the naming walk decides.
        _check_json(message, "message")
        return dict(copy.deepcopy(message))


def copy_json(value: _T) -> _T:
    """A deep copy of ``value`` (stored messages, say): one quick walk when it is made of
    exact JSON types, :func:`copy.deepcopy` otherwise."""
    try:
        copied: _T = _copied(value)
    except _NotPlain:
        return copy.deepcopy(value)
    return copied


class _NotPlain(Exception):
    """Raised by the fast walk at a value it does not copy itself."""


_IMMUTABLE: Final = frozenset({str, int, bool, type(None)})
_INF: Final = math.inf


def _encodes(text: str) -> bool:
    """True if ``text`` is UTF-8 encodable (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _copied_dict(value: Mapping[Any, Any]) -> Message:
    copied = {}
    for key, item in value.items():
        if type(key) is not str or not (key.isascii() or _encodes(key)):
            raise _NotPlain
        copied[key] = _copied(item)
    return copied


def _copied(value: Any) -> Any:
    """``value`` copied, if it is made of exact JSON types only (str keys, finite floats,
    UTF-8 encodable text); raise _NotPlain on anything else."""
    kind = type(value)
    if kind is str:
        if value.isascii() or _encodes(value):
            return value
        raise _NotPlain
    if kind in _IMMUTABLE:
        return value
    if kind is float:
        if -_INF < value < _INF:
            return value
        raise _NotPlain
    if kind is dict:
        return _copied_dict(value)
    if kind is list:
        return [_copied(item) for item in value]
    raise _NotPlain


#: Roles whose message may be just a role and a text content.
PLAIN_TEXT_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})


def is_plain_text(message: Message) -> bool:
    """Whether ``message`` is ``{"role": <a PLAIN_TEXT_ROLES role>, "content": <str>}`` and
    nothing else: a valid chat message, with nothing more to check."""
    return plain_text_prefix((message,)) == 1


def plain_text_prefix(messages: Sequence[object]) -> int:
    """How many of ``messages``, from the first, are plain text (:func:`is_plain_text`): the
    test is written here, as one loop, because a load runs it on every message it returns."""
    roles = PLAIN_TEXT_ROLES
    index = 0
    try:
        for index, message in enumerate(messages):
            if (
                type(message) is not dict
                or len(message) != 2
                or message.get("role") not in roles
                or type(message.get("content")) is not str
            ):
                return index
    except TypeError:  # an unhashable role (a list or an object) is not a plain-text role
        return index
    return len(messages)


def all_objects(values: Iterable[object]) -> bool:
    """Whether every one of ``values`` is a dict (one C-level pass)."""
    return all(map(isinstance, values, repeat(dict)))


def check_stored_message(message: object, kind: str) -> None:
    """The shape check of :func:`check_message` without the JSON walk, for messages just
    decoded from a backend (which are JSON already); raises InvalidMessage."""
    _check_shape(message, kind)


def _check_shape(message: object, kind: str) -> None:
    if not isinstance(message, dict):
        raise InvalidMessage(f"a message must be a dict, got {type(message).__name__}")
    if kind == MEMORY:
        raise InvalidMessage("a memory session holds no messages; use store.memory(user_id)")
    if kind == ITEMS:
        return
    role = message.get("role")
    allowed = _ALLOWED_KEYS.get(role) if isinstance(role, str) else None
    if allowed is None:
        raise InvalidMessage(
            f"unknown role {role!r}; a chat message's role is one of {', '.join(_ALLOWED_KEYS)} "
            "(use a session of kind 'items' for other shapes)"
        )
    if not message.keys() <= allowed:
        extra = set(message) - allowed
        raise InvalidMessage(
            f"{role} message has unsupported field(s) {sorted(map(str, extra))}; "
            f"allowed: {sorted(allowed)}"
        )
    if "name" in message and not isinstance(message["name"], str):
        raise InvalidMessage(f"{role} message 'name' must be a string")
    content = message.get("content")
    if role == "user" and type(content) is str:
        return  # the common message: nothing more to check
    if role == "assistant":
        if content is None and not message.get("tool_calls") and not message.get("refusal"):
            raise InvalidMessage("assistant message needs content, tool_calls or a refusal")
        if content is not None:
            _check_content(str(role), content)
        if "tool_calls" in message:
            _check_tool_calls(message["tool_calls"])
    else:
        if "content" not in message:
            raise InvalidMessage(f"{role} message needs 'content' (a string or a list of parts)")
        _check_content(str(role), content)
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidMessage(
                "tool message needs 'tool_call_id', the id of the assistant tool call it answers"
            )


def _check_content(role: str, content: object) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidMessage(
            f"{role} message content must be a string or a list of parts, "
            f"got {type(content).__name__}"
        )
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidMessage(
                f"{role} message content part {index} must be a dict with a 'type', "
                "such as {'type': 'text', 'text': '…'}"
            )


def _check_tool_calls(tool_calls: object) -> None:
    if not isinstance(tool_calls, list) or not tool_calls:
        raise InvalidMessage("assistant 'tool_calls' must be a non-empty list")
    for index, call in enumerate(tool_calls):
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            raise InvalidMessage(f"tool call {index} must be a dict with a string 'id'")
        function = call.get("function")
        if call.get("type", "function") == "function" and (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            raise InvalidMessage(
                f"tool call {index} needs function.name and function.arguments (a JSON string)"
            )


def _check_json(value: object, where: str) -> None:
    """Refuse what JSON cannot carry unchanged, naming where in the message it is."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMessage(f"{where} is {value!r}, which JSON cannot carry; use a number")
        return
    if isinstance(value, str):
        _check_text(value, where)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidMessage(f"{where} has key {key!r}; JSON object keys must be str")
            _check_text(key, f"a key of {where}")
            _check_json(item, f"{where}[{key!r}]")
        return
    raise InvalidMessage(
        f"{where} is a {type(value).__name__}, which would not come back unchanged; use None, "
        "bool, int, float, str, lists and str-keyed dicts"
    )


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(
            f"{where} holds a lone surrogate (such as '\\ud800'), which UTF-8 cannot encode"
        ) from None
