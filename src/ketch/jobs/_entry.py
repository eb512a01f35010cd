"""Runs a Job's ``python: module:function`` entry point: ``func(*args)``.

Kept free of ketch imports so that starting an attempt costs one interpreter
start and the user's own imports, nothing more. A return value that is an int
becomes the exit code; an exception prints its traceback and exits 1.
"""

import importlib
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m ketch.jobs._entry module:function [args...]", file=sys.stderr)
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
