"""The components' parts of ``ketch.Client``: ``client.pipelines``, ``client.registry``...

Each component declares its facade (``Component(sdk=Facade(name, "module:Class"))``);
the client reads the installed components' declarations once per process, and builds a
facade on first access, from the client itself (so it shares its connection). Adding a
component adds ``client.<name>`` without touching the client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ketch.core.component import Facade, facades, load_components, resolve

__all__ = ["Delegate", "MethodNames", "build_facade", "declared_facades"]

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def declared_facades() -> dict[str, Facade]:
    """``name -> Facade`` of every installed component (read once per process)."""
    return facades(load_components())


def build_facade(client: Any, name: str) -> Any:
    """The facade ``name`` for ``client``; ``AttributeError`` naming the installed ones
    when no component declares it (what ``getattr`` promises)."""
    found = declared_facades().get(name)
    if found is None:
        known = ", ".join(sorted(declared_facades())) or "none"
        raise AttributeError(f"ketch.Client has no attribute {name!r} (component facades "
                             f"installed: {known})")
    factory: Callable[[Any], Any] = resolve(found.target, f"client facade {name!r}")
    return factory(client)


class MethodNames:
    """``MethodNames().list_runs == "list_runs"``: how the client names a facade's
    methods for its delegates without importing the facade's module at run time."""

    def __getattr__(self, name: str) -> str:
        return name


class Delegate(Generic[P, R]):
    """``client.X(...)`` answered by ``client.<facade>.X(...)``, with X's signature.

    How ``ketch.Client`` keeps the kfp.Client-shaped calls where they were documented
    (``client.list_runs()``) while the code lives in the component's facade
    (``client.pipelines.list_runs()``): a delegate, not a base class.
    """

    def __init__(self, facade: str, method: Callable[Concatenate[Any, P], R] | str) -> None:
        # A name at run time (see MethodNames), the facade's method for the type checker.
        self.facade = facade
        self.name = method if isinstance(method, str) else method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.name:
            raise TypeError(f"delegate {name} names {self.facade}.{self.name}")

    @overload
    def __get__(self, obj: None,
                objtype: type | None = None) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: object | None,
                objtype: type | None = None) -> Callable[Concatenate[Any, P], R] | Callable[P, R]:
        if obj is None:
            # ``Client.list_runs`` is the facade's function, so ``inspect.signature`` and
            # ``help()`` show the real parameters and docstring.
            found = declared_facades().get(self.facade)
            if found is None:
                raise AttributeError(f"no component declares the facade {self.facade!r}")
            facade_class = resolve(found.target, f"client facade {self.facade!r}")
            unbound: Callable[Concatenate[Any, P], R] = getattr(facade_class, self.name)
            return unbound
        method: Callable[P, R] = getattr(getattr(obj, self.facade), self.name)
        return method
