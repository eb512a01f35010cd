"""Runs a ``module:function`` entry point as a process: ``func(*args)``.

Any component that runs user Python functions (Jobs' ``python:`` field, and
training and pipeline steps to come) starts ``python -m ketch.core.entrypoint``.
It lives in ``ketch.core``, whose package imports nothing heavy, and imports no
ketch module itself, so an attempt costs one interpreter start and the user's
own imports. A return value that is an int
becomes the exit code; an exception prints its traceback and exits 1.
"""

import importlib
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m ketch.core.entrypoint module:function [args...]", file=sys.stderr)
        return 2
    target, args = argv[0], argv[1:]
    module_name, _, func_name = target.partition(":")
    sys.path.insert(0, "")  # the working directory, as `python -m` would
    module = importlib.import_module(module_name)
    func = getattr(module, func_name, None)
    if not callable(func):
        print(f"{target}: {module_name} has no callable {func_name!r}", file=sys.stderr)
        return 2
    result = func(*args)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
