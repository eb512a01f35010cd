"""The transformer: a user class with ``preprocess``/``postprocess`` run around the model.

Like KServe's transformer component, but in the model server's own process (no extra
hop): ``--transformer module:Class``. The class is built with whichever of ``name`` and
``model_dir`` its constructor takes; ``load()``, ``preprocess()`` and ``postprocess()``
are each optional and may be sync or async. Each hook receives the payload and, when it
takes a second argument, the request headers (a dict with lower-cased names), as
KServe's ``Model.preprocess(payload, headers)`` does.

- V1: ``preprocess`` gets the JSON body (``{"instances": [...]}``) and returns the body
  the model should see; ``postprocess`` gets ``{"predictions": [...]}`` and returns the
  body sent back.
- V2: ``preprocess`` gets the request dict with every input's ``data`` decoded to a
  shaped numpy array, and returns a request of the same form (``data`` may be a numpy
  array or a JSON list); ``postprocess`` gets ``{"model_name", "id", "outputs": [...]}``
  with numpy ``data`` and returns that form.
"""

from __future__ import annotations

import inspect
from typing import Any

from ketch.serving._runtimes import ModelLoadError, build_user_object, maybe_await

__all__ = ["Transformer", "TransformerError"]


class TransformerError(Exception):
    """The user's preprocess or postprocess raised (an HTTP 500)."""


def _takes_headers(method: Any) -> bool:
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
            or any(p.name == "headers" for p in params))


class Transformer:
    """A loaded ``--transformer module:Class``.

    Args:
        target: ``module:Class``; the module is looked up on ``sys.path`` and in
            ``model_dir`` when that is a directory.
        name: The model name, passed to the constructor when it takes ``name``.
        model_dir: The model directory, passed when the constructor takes ``model_dir``.
    """

    def __init__(self, target: str, name: str, model_dir: str) -> None:
        self.target = target
        self.name = name
        self.model_dir = model_dir
        self.user: Any = None
        self._pre: Any = None
        self._post: Any = None
        self._pre_headers = self._post_headers = False

    async def load(self) -> None:
        """Build the user's object and run its ``load()``.

        Raises:
            ModelLoadError: If the class cannot be found, built or loaded.
        """
        self.user = build_user_object(self.target, self.name, self.model_dir,
                                      what="transformer", option="--transformer")
        loader = getattr(self.user, "load", None)
        if callable(loader):
            try:
                if await maybe_await(loader()) is False:
                    raise ModelLoadError(f"transformer {self.target}: load() returned False")
            except ModelLoadError:
                raise
            except Exception as e:
                raise ModelLoadError(f"transformer {self.target} failed to load: "
                                     f"{type(e).__name__}: {e}") from None
        pre = getattr(self.user, "preprocess", None)
        post = getattr(self.user, "postprocess", None)
        if not callable(pre) and not callable(post):
            raise ModelLoadError(f"transformer {self.target} has neither preprocess() nor "
                                 "postprocess()")
        if callable(pre):
            self._pre, self._pre_headers = pre, _takes_headers(pre)
        if callable(post):
            self._post, self._post_headers = post, _takes_headers(post)

    async def preprocess(self, payload: Any, headers: dict[str, str]) -> Any:
        """The payload the model should see (unchanged without a ``preprocess``).

        Raises:
            TransformerError: If the user's code raised.
        """
        if self._pre is None:
            return payload
        return await self._call(self._pre, self._pre_headers, payload, headers, "preprocess")

    async def postprocess(self, response: Any, headers: dict[str, str]) -> Any:
        """The response to send (unchanged without a ``postprocess``).

        Raises:
            TransformerError: If the user's code raised.
        """
        if self._post is None:
            return response
        return await self._call(self._post, self._post_headers, response, headers,
                                "postprocess")

    async def _call(self, method: Any, with_headers: bool, value: Any,
                    headers: dict[str, str], what: str) -> Any:
        try:
            if with_headers:
                return await maybe_await(method(value, headers))
            return await maybe_await(method(value))
        except Exception as e:
            text = str(e).splitlines()[0] if str(e) else ""
            raise TransformerError(f"transformer {what} failed: {type(e).__name__}: "
                                   f"{text}") from None
