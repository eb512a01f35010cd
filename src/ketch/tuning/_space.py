"""A search space and an algorithm, checked at apply time and turned into Optuna's terms.

Katib's ``parameters`` become Optuna distributions (``double``: float, ``int``: int,
``discrete`` and ``categorical``: a categorical over their list); Katib's algorithm
names and settings become a sampler. Everything wrong is refused with the path of the
field, before any trial runs. Optuna is imported only by ``distributions`` and
``sampler`` (the control plane that runs a study), never by the checks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ketch.core.errors import FieldError, InvalidError

if TYPE_CHECKING:
    from ketch.tuning._kinds import AlgorithmSpec, KatibExperimentSpec, ParameterSpec

__all__ = ["ALGORITHMS", "EARLY_STOPPING", "check_experiment", "distributions",
           "from_optuna", "sampler", "settings_of"]


@dataclass(frozen=True)
class Algorithm:
    settings: tuple[str, ...]
    summary: str


ALGORITHMS: dict[str, Algorithm] = {
    "random": Algorithm(("random_state",), "Optuna's RandomSampler"),
    "grid": Algorithm(("random_state",), "Optuna's GridSampler over every combination"),
    # Katib's tpe is hyperopt's (gamma, prior_weight, n_EI_candidates); Optuna's names
    # are taken too.
    "tpe": Algorithm(("gamma", "prior_weight", "n_EI_candidates", "n_startup_trials",
                      "n_ei_candidates", "random_state"), "Optuna's TPESampler"),
    "multivariate-tpe": Algorithm(("n_startup_trials", "n_ei_candidates", "random_state"),
                                  "Optuna's TPESampler(multivariate=True)"),
    "cmaes": Algorithm(("restart_strategy", "sigma", "random_state"), "Optuna's CmaEsSampler"),
    "bayesianoptimization": Algorithm(
        ("base_estimator", "n_initial_points", "acq_func", "acq_optimizer", "random_state"),
        "Optuna's GPSampler (a Gaussian process, log expected improvement)"),
    "sobol": Algorithm(("random_state",), "Optuna's QMCSampler(qmc_type='sobol')"),
}

EARLY_STOPPING: dict[str, Algorithm] = {
    "medianstop": Algorithm(("min_trials_required", "start_step"),
                            "stop a trial whose best value is worse than the median of "
                            "completed trials at the same step"),
}

_INT_SETTINGS = {"random_state", "n_startup_trials", "n_ei_candidates", "n_EI_candidates",
                 "n_initial_points", "min_trials_required", "start_step"}
_FRACTION_SETTINGS = {"gamma", "prior_weight"}
_RESTARTS = ("none", "ipop", "bipop")


def settings_of(spec: AlgorithmSpec) -> dict[str, str]:
    return {s.name: s.value for s in spec.algorithm_settings}


def check_experiment(spec: KatibExperimentSpec) -> None:
    """Raise InvalidError naming every wrong field of an Experiment's spec."""
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, param in enumerate(spec.parameters):
        path = f"spec.parameters[{i}]"
        if param.name in names:
            errors.append(FieldError(f"{path}.name", f"duplicate parameter {param.name!r}"))
        names.add(param.name)
        errors += _check_parameter(param, path)
    if not spec.parameters:
        errors.append(FieldError("spec.parameters", "at least one parameter is required"))
    errors += _check_algorithm(spec.algorithm, "spec.algorithm", ALGORITHMS)
    if spec.early_stopping is not None and spec.early_stopping.algorithm_name:
        errors += _check_algorithm(spec.early_stopping, "spec.earlyStopping", EARLY_STOPPING)
    if spec.algorithm.algorithm_name == "grid":
        for i, param in enumerate(spec.parameters):
            if param.parameter_type == "double" and not param.feasible_space.step:
                errors.append(FieldError(
                    f"spec.parameters[{i}].feasibleSpace.step",
                    f"grid needs a step for double parameter {param.name!r}"))
    collector = spec.metrics_collector_spec.collector if spec.metrics_collector_spec else None
    if collector is not None and collector.kind not in ("StdOut", "File", "Push"):
        errors.append(FieldError("spec.metricsCollectorSpec.collector.kind",
                                 f"the {collector.kind} collector is not supported yet; "
                                 "use StdOut, File or Push (ketch.tuning.report_metrics)"))
    if spec.nas_config is not None:
        errors.append(FieldError("spec.nasConfig", "neural architecture search (ENAS, "
                                 "DARTS) is not supported by ketch"))
    if (spec.max_trial_count is not None and spec.parallel_trial_count is not None
            and spec.parallel_trial_count > spec.max_trial_count):
        errors.append(FieldError("spec.parallelTrialCount",
                                 f"{spec.parallel_trial_count} is more than maxTrialCount "
                                 f"{spec.max_trial_count}"))
    metrics = {spec.objective.objective_metric_name, *spec.objective.additional_metric_names}
    for i, strategy in enumerate(spec.objective.metric_strategies):
        if strategy.name not in metrics:
            errors.append(FieldError(f"spec.objective.metricStrategies[{i}].name",
                                     f"{strategy.name!r} is not one of the objective's "
                                     f"metrics {sorted(metrics)}"))
    if errors:
        raise InvalidError("invalid Experiment", errors)


def _number(text: str | None, path: str, integer: bool) -> tuple[float | None, list[FieldError]]:
    if text is None or text == "":
        return None, []
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        return None, [FieldError(path, f"{text!r} is not {kind}")]
    if not math.isfinite(value):
        return None, [FieldError(path, f"{text!r} is not a finite number")]
    return float(value), []


def _check_parameter(param: ParameterSpec, path: str) -> list[FieldError]:
    space = param.feasible_space
    where = f"{path}.feasibleSpace"
    if param.parameter_type in ("discrete", "categorical"):
        if not space.values:
            return [FieldError(f"{where}.list", f"a {param.parameter_type} parameter needs a "
                               "non-empty list")]
        if len(set(space.values)) != len(space.values):
            return [FieldError(f"{where}.list", "values must be distinct")]
        if param.parameter_type == "discrete":
            bad = [v for v in space.values if _number(v, "", False)[1]]
            if bad:
                return [FieldError(f"{where}.list", f"discrete values must be numbers: {bad}")]
        return []
    integer = param.parameter_type == "int"
    low, e1 = _number(space.min, f"{where}.min", integer)
    high, e2 = _number(space.max, f"{where}.max", integer)
    step, e3 = _number(space.step, f"{where}.step", integer)
    errors = e1 + e2 + e3
    if errors:
        return errors
    if low is None or high is None:
        return [FieldError(f"{where}.{'min' if low is None else 'max'}",
                           f"a {param.parameter_type} parameter needs min and max")]
    if low > high:
        return [FieldError(where, f"min {space.min} is greater than max {space.max}")]
    if step is not None and step <= 0:
        return [FieldError(f"{where}.step", f"must be positive, got {space.step}")]
    if space.distribution in ("logUniform", "logNormal") and low <= 0:
        return [FieldError(f"{where}.min", f"a {space.distribution} parameter needs min > 0, "
                           f"got {space.min}")]
    if space.distribution in ("logUniform", "logNormal") and step is not None:
        return [FieldError(f"{where}.step", f"a step cannot be used with {space.distribution}")]
    return []


def _check_algorithm(spec: AlgorithmSpec, path: str,
                     known: Mapping[str, Algorithm]) -> list[FieldError]:
    name = spec.algorithm_name
    if name not in known:
        return [FieldError(f"{path}.algorithmName",
                           f"unknown algorithm {name!r}; one of: {', '.join(known)}")]
    allowed = known[name].settings
    errors = []
    for i, setting in enumerate(spec.algorithm_settings):
        where = f"{path}.algorithmSettings[{i}]"
        if setting.name not in allowed:
            errors.append(FieldError(f"{where}.name", f"unknown setting {setting.name!r} for "
                                     f"{name}; valid: {', '.join(allowed) or 'none'}"))
        elif setting.name in _INT_SETTINGS:
            try:
                if int(setting.value) < 0:
                    raise ValueError
            except ValueError:
                errors.append(FieldError(f"{where}.value", f"{setting.name} must be a "
                                         f"non-negative integer, got {setting.value!r}"))
        elif setting.name in _FRACTION_SETTINGS:
            number, bad = _number(setting.value, f"{where}.value", False)
            errors += bad or ([] if number is not None and number > 0 and
                              (setting.name != "gamma" or number < 1) else
                              [FieldError(f"{where}.value", f"{setting.name} must be positive"
                                          + (" and below 1" if setting.name == "gamma" else ""))])
        elif setting.name == "sigma":
            sigma, bad = _number(setting.value, f"{where}.value", False)
            errors += bad or ([] if sigma and sigma > 0 else
                              [FieldError(f"{where}.value", "sigma must be positive")])
        elif setting.name == "restart_strategy" and setting.value not in _RESTARTS:
            errors.append(FieldError(f"{where}.value", f"restart_strategy must be one of "
                                     f"{', '.join(_RESTARTS)}, got {setting.value!r}"))
        elif setting.name == "base_estimator" and setting.value not in ("GP", "gp"):
            errors.append(FieldError(f"{where}.value", "only base_estimator GP is supported "
                                     f"(a Gaussian process), got {setting.value!r}"))
    return errors


# -- Optuna's terms ------------------------------------------------------------------

def distributions(params: Sequence[ParameterSpec]) -> dict[str, Any]:
    """One Optuna distribution per parameter (the spec is already checked). Katib's
    normal and logNormal have no Optuna prior: they are searched as uniform and
    logUniform over [min, max] (docs/tuning.md)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    for p in params:
        space = p.feasible_space
        log = space.distribution in ("logUniform", "logNormal")
        if p.parameter_type in ("discrete", "categorical"):
            values: list[Any] = list(space.values or [])
            if p.parameter_type == "discrete":
                values = [_numeric(v) for v in values]
            found[p.name] = CategoricalDistribution(values)
        elif p.parameter_type == "int":
            found[p.name] = IntDistribution(int(str(space.min)), int(str(space.max)), log=log,
                                            step=int(space.step) if space.step else 1)
        else:
            low, high = float(str(space.min)), float(str(space.max))
            step = float(space.step) if space.step else None
            if step is not None:
                # Optuna wants high on the grid of low + k * step.
                high = low + math.floor((high - low) / step + 1e-9) * step
            found[p.name] = FloatDistribution(low, high, log=log, step=step)
    return found


def _numeric(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() \
        else value


def as_assignment(value: Any) -> str:
    """A sampled value as Katib writes it in parameterAssignments."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


def from_optuna(params: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"name": k, "value": as_assignment(v)} for k, v in params.items()]


def _grid(params: Sequence[ParameterSpec]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for name, dist in distributions(params).items():
        if hasattr(dist, "choices"):
            grid[name] = list(dist.choices)
        else:
            count = round((dist.high - dist.low) / dist.step) + 1
            grid[name] = [type(dist.low)(dist.low + i * dist.step) for i in range(count)]
    return grid


def seed_of(settings: Mapping[str, str], salt: str) -> int | None:
    """``random_state`` if set; resumed later (``salt``: how far the study is), a seed
    derived from it, so a restarted sampler does not replay the first suggestions."""
    if "random_state" not in settings:
        return None
    base = int(settings["random_state"])
    if not salt:
        return base
    return int.from_bytes(hashlib.sha256(f"{base}/{salt}".encode()).digest()[:4], "big")


def sampler(spec: KatibExperimentSpec, salt: str = "") -> Any:
    """The Optuna sampler of the Experiment's algorithm and settings."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        # QMC and GP are "experimental" to Optuna, CMA-ES's restart strategies deprecated
        # (there until Optuna 6): Katib's settings are honoured while Optuna has them.
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return _sampler(spec, salt)


def grid_size(spec: KatibExperimentSpec) -> int:
    return math.prod(len(values) for values in _grid(spec.parameters).values())


def _sampler(spec: KatibExperimentSpec, salt: str) -> Any:
    import optuna

    name = spec.algorithm.algorithm_name
    settings = settings_of(spec.algorithm)
    seed = seed_of(settings, salt)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(_grid(spec.parameters), seed=seed)
    if name in ("tpe", "multivariate-tpe"):
        extra: dict[str, Any] = {}
        if "gamma" in settings:  # hyperopt's: the fraction of trials taken as good
            fraction = float(settings["gamma"])
            extra["gamma"] = lambda n: min(math.ceil(fraction * n), 25)
        if "prior_weight" in settings:
            extra["prior_weight"] = float(settings["prior_weight"])
        candidates = settings.get("n_ei_candidates", settings.get("n_EI_candidates", "24"))
        return optuna.samplers.TPESampler(
            n_startup_trials=int(settings.get("n_startup_trials", 10)),
            n_ei_candidates=int(candidates), multivariate=name == "multivariate-tpe",
            seed=seed, **extra)
    if name == "cmaes":
        restart = settings.get("restart_strategy", "none")
        sigma = float(settings["sigma"]) if "sigma" in settings else None
        if restart == "none":
            return optuna.samplers.CmaEsSampler(sigma0=sigma, seed=seed)
        return optuna.samplers.CmaEsSampler(sigma0=sigma, seed=seed, restart_strategy=restart)
    if name == "bayesianoptimization":
        return optuna.samplers.GPSampler(
            n_startup_trials=int(settings.get("n_initial_points", 10)), seed=seed)
    if name == "sobol":
        return optuna.samplers.QMCSampler(qmc_type="sobol", seed=seed, scramble=True)
    raise InvalidError(f"unknown algorithm {name!r}")  # checked at apply: a stored old spec
