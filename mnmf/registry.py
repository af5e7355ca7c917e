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

See docs/design.md, §8.
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
    """Keyword options a class or function takes (None when it takes any ``**kwargs``).

    A class whose ``__init__`` takes ``**kwargs`` is taken to pass them on to its base
    class (``super().__init__(..., **kwargs)``): its options are its own named ones and
    those of the bases up the method resolution order, until an ``__init__`` without
    ``**kwargs``. Positional-only parameters and the names in ``skip`` (those the caller
    supplies itself) are left out.
    """
    if not isinstance(factory, type):
        return None if _takes_var_keyword(factory) else named_options(factory, skip=skip)
    names: set[str] = set()
    for klass in factory.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            return None  # **kwargs all the way up: nothing to check against
        names |= named_options(klass, skip=skip)
        if not _takes_var_keyword(klass):
            return names
    return None


def named_options(factory: Callable[..., Any], *, skip: Collection[str] = ()) -> set[str]:
    """The named keyword parameters of a class or function (``**kwargs`` ignored)."""
    return {p.name for p in _keyword_parameters(factory) if p.name not in skip}


def required_options(factory: Callable[..., Any]) -> set[str]:
    """Keyword parameters of a class or function that have no default."""
    return {p.name for p in _keyword_parameters(factory) if p.default is inspect.Parameter.empty}


def _keyword_parameters(factory: Callable[..., Any]) -> list[inspect.Parameter]:
    """Parameters that can be passed by keyword (``self`` of a class left out)."""
    parameters = list(inspect.signature(_target(factory)).parameters.values())
    if isinstance(factory, type):
        parameters = parameters[1:]  # self
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in parameters if p.kind in keyword]


def _target(factory: Callable[..., Any]) -> Callable[..., Any]:
    return vars(factory).get("__init__", factory.__init__) if isinstance(factory, type) else factory


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
    protocol: type | None = None,
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
    protocol : type, optional
        A runtime-checkable protocol that an instance must follow.
    """
    import copy

    if isinstance(spec, str):
        factory = registry.get(spec)
        accepted = accepted_options(factory)
        if accepted is not None:
            check_options(options, accepted, owner=f"{registry.kind} {spec!r}")
        missing = sorted(required_options(factory) - set(options))
        if missing:
            raise ValueError(f"{registry.kind} {spec!r} needs the option(s) {missing}")
        return factory(**options)
    if isinstance(spec, type):
        raise ValueError(
            f"{registry.argument} must be a name or an instance; got the class "
            f"{spec.__name__}: pass {spec.__name__}(...)"
        )
    if protocol is not None and not isinstance(spec, protocol):
        raise ValueError(
            f"{registry.argument} must be one of {list(registry)} or a {protocol.__name__}; "
            f"a {type(spec).__name__} lacks its methods"
        )
    if options:
        raise ValueError(
            f"{registry.argument} is an instance of {type(spec).__name__}: its options "
            f"belong in its constructor, got {sorted(options)} as well"
        )
    return copy.copy(spec)
