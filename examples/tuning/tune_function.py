"""Tune a Python function with ketch's KatibClient-shaped SDK, as katib's ``tune``.

    ketch up            # in another terminal (or `make up`)
    python examples/tuning/tune_function.py

Each trial runs the function's source in a process of its own, called with that
trial's values; it reports its objective by printing ``name=value`` (Katib's
default metrics format). Imports go inside the function: only its source travels.
"""

from __future__ import annotations

from ketch import Client
from ketch.tuning import search


def objective(parameters: dict[str, float]) -> None:
    import math

    x, y = parameters["x"], parameters["y"]
    # Himmelblau's function: four minima of 0.
    loss = (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2 + 0.1 * math.sin(x) ** 2
    print(f"loss={loss}")


def main() -> None:
    with Client() as client:
        client.tuning.tune(
            "himmelblau", objective,
            parameters={"x": search.double(min=-5, max=5), "y": search.double(min=-5, max=5)},
            objective_metric_name="loss", objective_type="minimize",
            algorithm_name="tpe", algorithm_settings={"random_state": 3},
            max_trial_count=40, parallel_trial_count=2)
        client.tuning.wait_for_experiment_condition("himmelblau", timeout=600)
        best = client.tuning.get_optimal_hyperparameters("himmelblau")
        print(best)


if __name__ == "__main__":
    main()
