"""Components declare their whole slice in one place, and reading the declarations is
cheap: the faces read every component's on each ``ketch`` and ``ketch.Client()``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from ketch.core.component import (
    CliVerb,
    Component,
    DescribeView,
    Facade,
    cli_verbs,
    describe_view,
    facades,
    load_components,
    resolve,
)


def test_the_installed_components_are_all_found_by_entry_point() -> None:
    assert [c.name for c in load_components()] == ["jobs", "pipelines", "registry", "serving",
                                                     "tuning"]


@pytest.mark.parametrize("component", load_components(), ids=lambda c: c.name)
def test_every_reference_of_a_declaration_resolves(component: Component) -> None:
    keys = {kind.key for kind in component.kinds}
    assert len(keys) == len(component.kinds)
    # A log reader is for one of the component's own kinds, under that kind's key.
    assert set(component.log_readers) <= keys
    assert all(callable(reader) for reader in component.log_readers.values())
    assert all(callable(factory) for factory in component.controllers)
    assert all(callable(router) for router in component.routers)
    for verb in component.cli:
        target = resolve(verb.target)
        assert isinstance(target, typer.Typer) if verb.group else callable(target)
    if component.sdk is not None:
        assert component.sdk.name == component.name
        assert callable(resolve(component.sdk.target))
    if component.stop_all is not None:
        assert callable(resolve(component.stop_all))
    # A describe view is for one of the component's own kinds ("Kind.group").
    for key in component.describe_views:
        kind, _, group = key.partition(".")
        assert any(k.kind == kind and k.group == group for k in component.kinds), key
        assert isinstance(describe_view([component], kind, group), DescribeView)
    described = component.describe()
    assert described["name"] == component.name
    assert [r["path"] for r in described["dashboard"]] == [r.path for r in component.dashboard]


def test_reading_the_declarations_imports_no_component_code_or_heavy_library() -> None:
    code = ("import sys\nfrom ketch.core.component import load_components\n"
            "cs = load_components()\n"
            "heavy = [m for m in ('pydantic', 'sqlalchemy', 'fastapi', 'httpx', 'psutil') "
            "if m in sys.modules]\n"
            "code = [m for m in sys.modules if m.startswith('ketch.') and "
            "m.split('.')[-1].startswith('_')]\n"
            "print(','.join(heavy + code))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_a_bad_reference_names_itself_and_what_it_was_for() -> None:
    broken = Component("broken", kinds=("ketch.nope._kind:THING",))
    with pytest.raises(ImportError, match=r"component broken kind 'ketch.nope._kind:THING'"):
        _ = broken.kinds
    with pytest.raises(ImportError, match="has no attribute 'missing'"):
        resolve("ketch.core.component:missing", "CLI verb 'x'")
    with pytest.raises(ValueError, match=r"expected 'package\.module:attribute'"):
        resolve("ketch.core.component", "client facade 'x'")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        Component("model-registry")


def test_two_components_cannot_claim_one_verb_or_one_facade() -> None:
    a = Component("a", cli=(CliVerb("train", "m:f", "Train."),), sdk=Facade("same", "m:A"))
    b = Component("b", cli=(CliVerb("train", "m:g", "Train too."),), sdk=Facade("same", "m:B"))
    with pytest.raises(ValueError, match="CLI verb 'train'"):
        cli_verbs([a, b])
    with pytest.raises(ValueError, match="client facade 'same'"):
        facades([a, b])
