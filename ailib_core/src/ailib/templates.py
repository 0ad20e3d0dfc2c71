"""`SessionTemplate`: a session pre-configured from a system prompt and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Formatter
from typing import TYPE_CHECKING, Any

from ailib.errors import ConfigurationError
from ailib.session import Session

if TYPE_CHECKING:
    from ailib.store import SessionStore

__all__ = ("SessionTemplate",)


@dataclass(frozen=True)
class SessionTemplate:
    """A reusable recipe: ``system`` may hold ``{variables}`` filled in by :meth:`create`,
    which also lands them in the metadata along with ``template`` and ``metadata``."""

    name: str
    system: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        return [f for _, f, _, _ in Formatter().parse(self.system) if f]

    def create(self, store: SessionStore | None = None, **values: Any) -> Session:
        """A new session (bound to ``store`` when given) with the prompt filled in."""
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise ConfigurationError(
                f"template {self.name!r} needs {', '.join(missing)}; pass them as keywords"
            )
        metadata = {"template": self.name, **self.metadata, **values}
        system = {"role": "system", "content": self.system.format(**values)}
        if store is None:
            return Session(messages=[system], metadata=metadata)
        return store.create(metadata, messages=[system])
