"""Prompt helpers: `PromptTemplate` fills ``{variables}``; `PromptBuilder` assembles messages.

>>> PromptTemplate("Translate {text} into {language}.").format(text="hi", language="French")
'Translate hi into French.'
>>> PromptBuilder().system("Be brief.").user("Hi").build()
[{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import Any, Self

from ailib.errors import ConfigurationError
from ailib.messages import Message, check_message
from ailib.session import Session

__all__ = ("PromptBuilder", "PromptTemplate")

_ROOT = re.compile(r"[^.\[]*")


@dataclass(frozen=True)
class PromptTemplate:
    """A ``str.format`` template whose fields are all named: ``"Hello {name}"``.

    Fields may use attribute/index access and format specs (``{user.name}``, ``{score:.2f}``);
    the variable is the name before them. ``{{`` and ``}}`` are literal braces.
    """

    template: str

    def __post_init__(self) -> None:
        try:
            fields = _fields(self.template)
        except ValueError as exc:
            raise ConfigurationError(f"bad prompt template {self.template!r}: {exc}") from None
        for _, _, _, conversion in Formatter().parse(self.template):
            if conversion not in (None, "r", "s", "a"):
                raise ConfigurationError(
                    f"bad prompt template {self.template!r}: unknown conversion !{conversion} "
                    "(use !r, !s or !a)"
                )
        if any(not _root(field) or _root(field).isdigit() for field in fields):
            raise ConfigurationError(
                f"prompt template {self.template!r} has a positional field ({{}} or {{0}}); "
                "name every field, e.g. {topic}"
            )

    @property
    def variables(self) -> tuple[str, ...]:
        """The variable names, each once, in order of first appearance."""
        return tuple(dict.fromkeys(_root(field) for field in _fields(self.template)))

    def format(self, **values: Any) -> str:
        """The filled-in text; every variable must be given (extra values are ignored)."""
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise ConfigurationError(
                f"prompt template is missing {_names(missing)}; pass "
                + ", ".join(f"{name}=..." for name in missing)
            )
        return self.template.format(**values)

    def partial(self, **values: Any) -> PromptTemplate:
        """A template with the given variables filled in and the others left as fields."""
        pieces: list[str] = []
        for literal, field, spec, conversion in Formatter().parse(self.template):
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            if field is None:
                continue
            text = "{" + field + (f"!{conversion}" if conversion else "")
            text += (f":{spec}" if spec else "") + "}"
            names = {_root(field), *(_root(f) for f in _fields(spec or ""))}
            if names <= values.keys():
                filled = text.format(**values)
                text = filled.replace("{", "{{").replace("}", "}}")
            pieces.append(text)
        return PromptTemplate("".join(pieces))

    def __str__(self) -> str:
        return self.template


class PromptBuilder:
    """Builds a list of Chat Completions messages fluently; each message is checked as added.

    ``PromptBuilder().system("...").user("...").build()`` gives the list;
    :meth:`to_session` appends the messages to a session instead.
    """

    def __init__(self) -> None:
        self._messages: list[Message] = []

    def system(self, content: str) -> Self:
        return self.message("system", content)

    def user(self, content: Any) -> Self:
        """A user message; ``content`` is text or a list of content parts."""
        return self.message("user", content)

    def assistant(self, content: Any = None, **fields: Any) -> Self:
        """An assistant message, e.g. ``assistant(tool_calls=[...])`` for a tool call."""
        return self.message("assistant", content, **fields)

    def message(self, role: str, content: Any = None, **fields: Any) -> Self:
        """Any message: ``role``, ``content`` and other fields such as ``tool_call_id``."""
        message: Message = {"role": role, "content": content, **fields}
        if content is None and role == "assistant":
            message.pop("content")
        self._messages.append(check_message(message))
        return self

    def build(self) -> list[Message]:
        """The messages so far (copies: changing them leaves the builder as it was)."""
        return [dict(m) for m in self._messages]

    def to_session(self, session: Session | None = None) -> Session:
        """``session`` (a new one when omitted) with the messages appended, in order."""
        target = Session() if session is None else session
        for message in self.build():
            target.add(message)
        return target

    def __len__(self) -> int:
        return len(self._messages)


def _fields(template: str) -> list[str]:
    """Every field name in ``template``, including those nested in format specs."""
    names: list[str] = []
    for _, field, spec, _ in Formatter().parse(template):
        if field is not None:
            names.append(field)
            names.extend(_fields(spec or ""))
    return names


def _root(field: str) -> str:
    match = _ROOT.match(field)
    return match.group() if match else field


def _names(names: list[str]) -> str:
    quoted = [repr(n) for n in names]
    return ("variable " if len(names) == 1 else "variables ") + ", ".join(quoted)
