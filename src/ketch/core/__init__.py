"""ketch.core: resources, store, controller runtime, executors, artifacts, config, errors.

Core imports no component; components import core.
"""
