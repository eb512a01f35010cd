"""Channels formatted into strings (f-strings) become extra inputs filled at run time;
Optional pipeline parameters left unset."""

# ruff: noqa: UP045 - written as a KFP user writes it (typing
# names, Optional, list/dict defaults that kfp records as the parameters' defaults).

from typing import Optional

from kfp import dsl


@dsl.component
def name_of(first: str, last: Optional[str] = None) -> str:
    return first if last is None else f"{first} {last}"


@dsl.component
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="fstrings")
def fstrings(first: str = "Ada", last: Optional[str] = None, greeting: str = "Hello") -> str:
    named = name_of(first=first, last=last)
    return echo(text=f"{greeting}, {named.output}!").output


EXPECTED = {
    "arguments": {"last": "Lovelace"},
    "phase": "Succeeded",
    "outputs": {"parameters": {"Output": "Hello, Ada Lovelace!"}},
    "tasks": {"name-of": {"phase": "Succeeded",
                          "outputs": {"parameters": {"Output": "Ada Lovelace"}}}},
}
