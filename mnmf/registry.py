"""Registries (name → class or function) and the one way options are checked.

Strings are resolved once, at the edges (:func:`mnmf.separate`, :func:`mnmf.fit_nmf`,
:func:`mnmf.fit_mnmf`, the Hydra layer): everywhere else models are instances. A
registry maps a name to what it builds; :func:`check_options` is the single check that
an option is taken by whatever receives it, so that a misspelt or misplaced option is a
``ValueError`` naming it and listing the valid ones, never a silent no-op or a
``TypeError`` from deep inside.

Example
-------
>>> from mnmf.sources import SOURCE_MODELS
>>> sorted(SOURCE_MODELS)
['isnmf', 'smooth']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of thing (``"source model"``, ``"method"``, …) and what they build.

    Parameters
    ----------
    kind : str
        What the entries are, used in error messages (``"source_model must be one of …"``
        uses ``argument``).
    argument : str
        The name of the argument that takes these names.
    """

    def __init__(self, kind: str, *, argument: str) -> None:
        self.kind = kind
        self.argument = argument
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class or function under ``name`` (unique)."""

        def decorator(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return decorator

    def get(self, name: object) -> T:
        """The entry registered as ``name``; a ValueError listing the names otherwise."""
        if not isinstance(name, str) or name not in self._entries:
            listed = ", ".join(repr(n) for n in self._entries)
            raise ValueError(f"{self.argument} must be one of {listed}; got {name!r}")
        return self._entries[name]

    def name_of(self, entry: object) -> str | None:
        """The name under which ``entry`` (or the class of an instance) is registered."""
        for name, registered in self._entries.items():
            if entry is registered or (isinstance(registered, type) and type(entry) is registered):
                return name
        return None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {list(self._entries)})"


def accepted_options(factory: Callable[..., Any], *, skip: Collection[str] = ()) -> set[str] | None:
    """Keyword options a class or function takes (None when it takes ``**kwargs``).

    Positional-only parameters and the names in ``skip`` (those the caller supplies
    itself) are left out.
    """
    if _takes_var_keyword(factory):
        return None
    return named_options(factory, skip=skip)


def named_options(factory: Callable[..., Any], *, skip: Collection[str] = ()) -> set[str]:
    """The named keyword parameters of a class or function (``**kwargs`` ignored)."""
    parameters = list(inspect.signature(_target(factory)).parameters.values())
    if isinstance(factory, type):
        parameters = parameters[1:]  # self
    return {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in skip
    }


def _target(factory: Callable[..., Any]) -> Callable[..., Any]:
    return factory.__init__ if isinstance(factory, type) else factory


def _takes_var_keyword(factory: Callable[..., Any]) -> bool:
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(_target(factory)).parameters.values()
    )


def check_options(options: Mapping[str, object], accepted: Collection[str], *, owner: str) -> None:
    """Refuse options that ``owner`` does not take, naming them and listing the valid ones."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{owner} got unknown option(s) {unknown}; its options are {sorted(accepted)}"
        )


def build(
    registry: Registry[type[T]],
    spec: str | T,
    options: Mapping[str, object],
    *,
    supplied: Mapping[str, object] | None = None,
) -> T:
    """An instance from a registered name and its options, or a copy of a given instance.

    Parameters
    ----------
    registry : Registry
    spec : str or instance
        A registered name, or an instance (returned as a shallow copy so that fitting
        never changes the caller's object; options are then refused: they belong in the
        instance's own constructor).
    options : mapping
        Constructor options for a name, each checked against the constructor.
    supplied : mapping, optional
        Constructor arguments the caller supplies itself (e.g. ``n_components``); not
        user options, passed as given.
    """
    import copy

    if not isinstance(spec, str):
        if options:
            raise ValueError(
                f"{registry.argument} is an instance of {type(spec).__name__}: its options "
                f"belong in its constructor, got {sorted(options)} as well"
            )
        return copy.copy(spec)
    factory = registry.get(spec)
    accepted = accepted_options(factory, skip=tuple(supplied or ()))
    if accepted is not None:
        check_options(options, accepted, owner=f"{registry.kind} {spec!r}")
    missing = sorted(required_options(factory) - set(options) - set(supplied or ()))
    if missing:
        raise ValueError(f"{registry.kind} {spec!r} needs the option(s) {missing}")
    return factory(**(dict(supplied or {}) | dict(options)))


def required_options(factory: Callable[..., Any]) -> set[str]:
    """Keyword parameters of a class or function that have no default."""
    parameters = list(inspect.signature(_target(factory)).parameters.values())
    if isinstance(factory, type):
        parameters = parameters[1:]  # self
    return {
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
