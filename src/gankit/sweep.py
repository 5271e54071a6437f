"""Sweeps over a preset's settings, on Optuna: ``gankit sweep SPEC.json --out sweeps/NAME``.

A spec (JSON) names a base preset, the search space over ``--set`` keys, the seeds each configuration trains
with, the budget of one run and the objective::

    {"preset": "dcgan-digits",
     "set": ["train.sample_every=500"],                    # fixed changes to the preset (optional)
     "space": {"train.lr_g": {"log": [1e-4, 1e-3]},        # a float on a log scale
               "train.batch_size": {"int": [32, 128]},     # an integer
               "loss.name": {"choice": ["non-saturating", "hinge"]}},
     "sampler": "tpe",                                      # grid, random or tpe
     "trials": 12,                                          # configurations (grid: every combination)
     "seeds": [0, 1, 2],                                    # each configuration trains once per seed
     "budget": {"steps": 1000},                             # or {"minutes": 2}: each run's train.time_limit
     "objective": {"metric": "fid", "samples": 2000}}       # or {"logged": "d_loss"} (a train_log value)

Two kinds of space key set several settings at once: ``"train.lr_g+train.lr_d": {"log": [1e-4, 1e-3]}`` gives
every setting it joins the same value, and a key without a dot is a named bundle whose choices are objects of
settings, ``"stabilizer": {"choice": [{}, {"objective.r1_weight": 1.0}, {"model.d_pack": 2}]}`` (``{}``: the
preset as it is).

Each run is an ordinary run folder, ``OUT/runs/<configuration>/seed-<s>``, named by the configuration's
settings (not by the trial number), so a sweep that was stopped continues: finished runs are read, not trained
again; a run that was killed resumes from its checkpoint. The objective of a configuration is the mean over its
seeds (the metric from the run's last periodic evaluation; lower is better unless ``"direction": "maximize"``).
A run that fails records its one-line error on the trial, and the sweep goes on.

Storage: by default a journal file in the sweep folder (``OUT/study.log``; several processes on one machine may
work on one sweep at once); ``storage`` a database URL (``postgresql://...``) lets many machines share it.
When the sweep ends it writes the comparison page of its runs (``OUT/compare.html``) and the best settings as a
``gankit train`` command.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
import socket
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from gankit.errors import ConfigError, GankitError

SAMPLERS = ("grid", "random", "tpe")
KINDS = ("log", "float", "int", "choice")
SPEC_KEYS = (
    "preset",
    "set",
    "space",
    "sampler",
    "trials",
    "seeds",
    "budget",
    "objective",
    "evaluate_every",
    "prune",
    "name",
    "description",
)


@dataclasses.dataclass
class Spec:
    preset: str
    space: dict[str, dict[str, list]]
    sampler: str = "tpe"
    trials: int = 10
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    budget: dict[str, float] = dataclasses.field(default_factory=lambda: {"steps": 1000})
    objective: dict[str, Any] = dataclasses.field(default_factory=lambda: {"metric": "fid"})
    set: list[str] = dataclasses.field(default_factory=list)
    evaluate_every: int = 0  # steps between a metric objective's evaluations (0: once, at the end)
    prune: bool = True  # stop a run whose evaluations trail the other trials' median (Optuna's MedianPruner)

    def settings(self, params: dict[str, Any]) -> list[str]:
        """The ``--set`` options of a configuration (Optuna's parameters)."""
        out = []
        for key, value in params.items():
            if is_bundle(key):
                out += [f"{k}={json.dumps(v)}" for k, v in json.loads(value).items()]
            else:
                out += [f"{k}={json.dumps(value)}" for k in key.split("+")]
        return out

    def choices(self, key: str) -> list:
        """A choice key's values as Optuna takes them (bundles as JSON text)."""
        values = self.space[key]["choice"]
        return [json.dumps(v, sort_keys=True) for v in values] if is_bundle(key) else values

    @property
    def objective_key(self) -> str:
        """The value a metric objective reads: ``key`` (e.g. coverage of metric prdc), else the metric's name."""
        return self.objective.get("key", self.objective.get("metric", ""))

    @property
    def direction(self) -> str:
        return self.objective.get("direction", "minimize")


def shipped_specs() -> list[str]:
    """The names of the specs gankit ships (``gankit sweep NAME``): the studies in docs/results.md."""
    return sorted(p.name.removesuffix(".json") for p in (resources.files("gankit") / "sweeps").iterdir())


def read_spec(path: str | Path) -> Spec:
    """A sweep spec (a file, or a shipped spec's name), checked: every error is one line naming the key."""
    from gankit.files import read_json

    path = Path(path)
    if not path.exists() and path.name in shipped_specs():
        path = Path(str(resources.files("gankit") / "sweeps" / f"{path.name}.json"))
    elif not path.exists() and path.suffix != ".json":
        raise ConfigError(f"{path}: no such file, nor a shipped spec (shipped: {', '.join(shipped_specs())})")
    raw = read_json(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a sweep spec is a JSON object")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SPEC_KEYS)}")
    for key in ("preset", "space"):
        if key not in raw:
            raise ConfigError(f"{where}: '{key}' is required")
    space = raw["space"]
    if not isinstance(space, dict) or not space:
        raise ConfigError(
            f'{where}: \'space\' must name at least one setting, e.g. {{"train.lr_g": {{"log": [1e-4, 1e-3]}}}}'
        )
    for key, domain in space.items():
        check_domain(where, key, domain)
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(f"{where}: 'sampler' is one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if sampler == "grid":
        bad = [k for k, d in space.items() if "choice" not in d]
        if bad:
            raise ConfigError(f'{where}: a grid sweep takes choices only; give {bad[0]} as {{"choice": [...]}}')
    trials = raw.get("trials", 10)
    if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= 10_000:
        raise ConfigError(f"{where}: 'trials' must be a whole number from 1 to 10,000, got {trials!r}")
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(seeds))
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}: 'seeds' is a count or a list of whole numbers >= 0, got {seeds!r}")
    budget = raw.get("budget", {"steps": 1000})
    if not (isinstance(budget, dict) and len(budget) == 1 and set(budget) <= {"steps", "minutes"}):
        raise ConfigError(f'{where}: \'budget\' is {{"steps": N}} or {{"minutes": M}}, got {budget!r}')
    value = next(iter(budget.values()))
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1e7:
        raise ConfigError(f"{where}: 'budget' must be a positive number of steps or minutes, got {value!r}")
    if "steps" in budget and value != int(value):
        raise ConfigError(f"{where}: 'budget' steps must be a whole number, got {value!r}")
    objective = raw.get("objective", {"metric": "fid"})
    if not (isinstance(objective, dict) and (("metric" in objective) != ("logged" in objective))):
        raise ConfigError(f'{where}: \'objective\' is {{"metric": NAME}} or {{"logged": KEY}}, got {objective!r}')
    if objective.get("direction", "minimize") not in ("minimize", "maximize"):
        raise ConfigError(f"{where}: 'objective.direction' is minimize or maximize")
    fixed = raw.get("set", [])
    if not (isinstance(fixed, list) and all(isinstance(s, str) and "=" in s for s in fixed)):
        raise ConfigError(f"{where}: 'set' is a list of KEY=VALUE strings, got {fixed!r}")
    every = raw.get("evaluate_every", 0)
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise ConfigError(f"{where}: 'evaluate_every' is a whole number of steps >= 0, got {every!r}")
    if every and "metric" not in objective:
        raise ConfigError(f"{where}: 'evaluate_every' needs a metric objective ({{\"metric\": ...}})")
    prune = raw.get("prune", True)
    if not isinstance(prune, bool):
        raise ConfigError(f"{where}: 'prune' is true or false, got {prune!r}")
    spec = Spec(raw["preset"], space, sampler, trials, seeds, budget, objective, fixed, every, prune)
    check_settings(where, spec)
    return spec


def is_bundle(key: str) -> bool:
    """Whether a space key is a named bundle: its choices are objects of settings (held as JSON by Optuna)."""
    return "." not in key


def check_domain(where: str, key: str, domain: Any) -> None:
    if is_bundle(key):
        choices = domain.get("choice") if isinstance(domain, dict) and len(domain) == 1 else None
        if not (isinstance(choices, list) and choices and all(isinstance(c, dict) for c in choices)):
            raise ConfigError(
                f"{where}: space.{key} names no setting (no dot), so it is a bundle: "
                f'{{"choice": [{{"SETTING": VALUE, ...}}, ...]}}, got {domain!r}'
            )
        bad = [k for c in choices for k in c if not isinstance(k, str) or "." not in k]
        if bad:
            raise ConfigError(f"{where}: space.{key}: {bad[0]!r} is not a setting (section.key)")
        return
    if any(not part.strip() for part in key.split("+")):
        raise ConfigError(f"{where}: space.{key}: an empty setting between '+' signs")
    if not (isinstance(domain, dict) and len(domain) == 1 and next(iter(domain)) in KINDS):
        raise ConfigError(
            f'{where}: space.{key} is one of {{"log"|"float"|"int": [low, high]}} or '
            f'{{"choice": [...]}}, got {domain!r}'
        )
    kind, values = next(iter(domain.items()))
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: space.{key}.{kind} is an empty or missing list")
    if kind == "choice":
        return
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if len(values) != 2 or not numeric or not values[0] < values[1]:
        raise ConfigError(f"{where}: space.{key}.{kind} is [low, high] with low < high, got {values!r}")
    if kind == "log" and values[0] <= 0:
        raise ConfigError(f"{where}: space.{key}.log needs low > 0, got {values[0]}")
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"{where}: space.{key}.int takes whole numbers, got {values!r}")


def check_settings(where: str, spec: Spec) -> None:
    """Every setting the sweep can make builds a valid config (the space's bounds and first choices)."""
    from gankit.config import load_config

    for key, domain in spec.space.items():
        kind, values = next(iter(domain.items()))
        for value, held in zip(values, spec.choices(key) if kind == "choice" else values[:2]):
            try:
                load_config(spec.preset, [*spec.set, *spec.settings({key: held})])
            except ConfigError as error:
                raise ConfigError(f"{where}: space.{key} = {value!r}: {error}") from None


# ---------------------------------------------------------------------------------------------- running


def suggest(trial, spec: Spec) -> dict[str, Any]:
    """One configuration of the space, suggested by Optuna."""
    params = {}
    for key, domain in spec.space.items():
        kind, values = next(iter(domain.items()))
        if kind == "choice":
            params[key] = trial.suggest_categorical(key, spec.choices(key))
        elif kind == "int":
            params[key] = trial.suggest_int(key, values[0], values[1])
        else:
            params[key] = trial.suggest_float(key, values[0], values[1], log=kind == "log")
    return params


def key_of(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def readable_settings(params: dict[str, Any], short: bool = False) -> list[str]:
    """A configuration's settings as KEY=VALUE words (bundles expanded; ``{}`` is the preset as it is)."""
    words = []
    for key, value in sorted(params.items()):
        if is_bundle(key):
            items = json.loads(value).items()
            words += [f"{k}={v}" for k, v in items] if items else [f"{key}=preset"]
        else:
            words.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    if short:
        words = [
            "+".join(part.split(".")[-1] for part in w.split("=", 1)[0].split("+")) + "=" + w.split("=", 1)[1]
            for w in words
        ]
    return words


def described(params: dict[str, Any]) -> str:
    return ", ".join(readable_settings(params))


def configuration_name(params: dict[str, Any]) -> str:
    """A run folder's name for a configuration: readable, and unique by a hash of its exact settings."""
    text = json.dumps(params, sort_keys=True)
    readable = "_".join(readable_settings(params, short=True))
    safe = "".join(c if c.isalnum() or c in "=._-" else "-" for c in readable)[:80]
    return f"{safe}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def run_overrides(spec: Spec, params: dict[str, Any], seed: int) -> list[str]:
    budget = spec.budget
    overrides = [*spec.set, *spec.settings(params), f"train.seed={seed}"]
    if "steps" in budget:
        overrides.append(f"train.steps={int(budget['steps'])}")
    else:
        overrides += [f"train.time_limit={budget['minutes'] * 60:g}", "train.steps=100000000"]
    if "metric" in spec.objective:  # one evaluation at the end (and on a stop): the run's own periodic one
        metric = spec.objective["metric"]
        every = spec.evaluate_every or (int(budget["steps"]) if "steps" in budget else 100000000)
        overrides += [
            f"train.eval_every={every}",
            f"train.eval_metrics={json.dumps([metric])}",
            f"train.eval_best={spec.objective_key}",
            f"train.eval_samples={int(spec.objective.get('samples', 2000))}",
        ]
    return overrides


def run_value(folder: Path, spec: Spec) -> float:
    """The objective of a finished run folder."""
    from gankit.training.outputs import read_jsonl

    if "metric" in spec.objective:
        rows = read_jsonl(folder / "metrics.jsonl") if (folder / "metrics.jsonl").is_file() else []
        values = [r["metrics"].get(spec.objective_key) for r in rows]
        values = [v for v in values if isinstance(v, (int, float))]
        if not values:
            raise GankitError(f"{folder}: no {spec.objective_key} in metrics.jsonl")
        return float(values[-1])
    rows = read_jsonl(folder / "train_log.jsonl")
    key = spec.objective["logged"]
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if not values:
        raise GankitError(f"{folder}: no {key!r} in train_log.jsonl")
    return float(values[-1])


def finished(folder: Path) -> bool:
    return (folder / "finished.json").is_file()


def train_one(
    spec: Spec, params: dict[str, Any], seed: int, folder: Path, log: Callable[[str], None], trial=None
) -> float:
    """Train (or resume, or read) one run of a configuration; its objective value. With ``trial``, each periodic
    evaluation is reported to it, and a run the pruner finds hopeless stops there (optuna.TrialPruned)."""
    import optuna

    from gankit import load_config, train
    from gankit.files import atomic_write_text

    if not finished(folder):
        config = load_config(spec.preset, run_overrides(spec, params, seed))
        resume = (folder / "checkpoints").is_dir() and any((folder / "checkpoints").glob("ckpt-*.safetensors"))

        def on_evaluation(step: int, metrics: dict[str, Any]) -> bool:
            trial.report(float(metrics[spec.objective_key]), step)
            return spec.prune and trial.should_prune()

        reporting = trial is not None and "metric" in spec.objective
        result = train(
            config,
            folder,
            resume=resume,
            progress=False,
            log=lambda s: None,
            on_evaluation=on_evaluation if reporting else None,
        )
        if result.interrupted:
            raise KeyboardInterrupt
        record = {"step": result.step, "pruned": result.stopped_by_evaluation}
        atomic_write_text(folder / "finished.json", json.dumps(record) + "\n")
    if json.loads((folder / "finished.json").read_text()).get("pruned"):
        raise optuna.TrialPruned(f"{folder}: pruned on its periodic evaluation")
    value = run_value(folder, spec)
    log(f"  {folder.parent.name} seed {seed}: {value:.4g}")
    return value


def open_study(spec: Spec, out: Path, storage: str | None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is None:
        from optuna.storages.journal import JournalFileBackend

        out.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.log")))
    else:  # a database several machines share: a worker's heartbeat tells a running trial from an abandoned one
        url = storage
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat: stable enough
        for attempt in range(5):  # workers starting together on a fresh database race to create its tables
            try:
                storage = optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=30,
                    grace_period=120,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
                break
            except Exception as error:  # the database's driver and server: any failure means "cannot open it"
                if attempt < 4 and ("duplicate key" in str(error) or "already exists" in str(error)):
                    time.sleep(0.5 + attempt)
                    continue
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise ConfigError(f"--storage {url}: cannot open the study there ({first})") from None
    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler({k: spec.choices(k) for k in spec.space}, seed=0)
    elif spec.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=0)
    else:
        sampler = optuna.samplers.TPESampler(seed=0)
    return optuna.create_study(
        study_name=out.name or "sweep",
        storage=storage,
        sampler=sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2) if spec.prune else optuna.pruners.NopPruner(),
        direction=spec.direction,
        load_if_exists=True,
    )


def total_trials(spec: Spec) -> int:
    if spec.sampler == "grid":
        return math.prod(len(d["choice"]) for d in spec.space.values())
    return spec.trials


def run_sweep(spec: Spec, out: str | Path, storage: str | None = None, log: Callable[[str], None] = print) -> dict:
    """Work on the sweep until it has its trials; returns the best configuration and its value."""
    import optuna

    out = Path(out)
    study = open_study(spec, out, storage)
    wanted = total_trials(spec)
    retry_stale(study, log)
    retry_interrupted(study, log)

    def done(study) -> int:  # configurations finished: completed, or failed with an error of their own
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
        return len(
            {
                key_of(t.params)
                for t in study.get_trials(deepcopy=False, states=states)
                if t.state == optuna.trial.TrialState.COMPLETE
                or "error" in t.user_attrs
                or (t.state == optuna.trial.TrialState.PRUNED and "duplicate" not in t.user_attrs)
            }
        )

    def taken(study, trial, params) -> bool:
        """Whether this configuration is done, or another worker trains it: of two workers that drew it at the
        same moment, the earlier trial trains it and the later one gives way (never both)."""
        key = key_of(params)
        return any(
            key_of(t.params) == key
            and (
                t.state == optuna.trial.TrialState.COMPLETE
                or (t.state == optuna.trial.TrialState.PRUNED and "duplicate" not in t.user_attrs)
                or (t.state == optuna.trial.TrialState.RUNNING and t.number < trial.number)
            )
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number
        )

    def objective(trial) -> float:
        trial.set_user_attr("worker", WORKER)
        params = suggest(trial, spec)
        if taken(study, trial, params):  # two workers drew the same configuration: one trains it
            time.sleep(1.0)
            trial.set_user_attr("duplicate", True)
            raise optuna.TrialPruned("another worker has this configuration")
        name = configuration_name(params)
        trial.set_user_attr("runs", str(out / "runs" / name))
        log(f"trial {trial.number}: {described(params)}")
        try:
            values = [
                train_one(spec, params, seed, out / "runs" / name / f"seed-{seed}", log, trial if i == 0 else None)
                for i, seed in enumerate(spec.seeds)
            ]  # the first seed's evaluations go to the pruner (a trial reports one curve)
        except GankitError as error:
            message = str(error).splitlines()[0]
            trial.set_user_attr("error", message)
            log(f"trial {trial.number} failed: {message}")
            raise
        value = sum(values) / len(values)
        trial.set_user_attr("values", values)
        log(f"trial {trial.number}: {value:.4g} (mean of {len(values)} seed{'s' * (len(values) != 1)})")
        return value

    def enough(study, _trial) -> None:
        if done(study) >= wanted:
            study.stop()

    if done(study) < wanted:
        # pruned duplicates (two workers, one configuration) take trials too: a bound, not the count
        study.optimize(objective, n_trials=4 * wanted, catch=(GankitError,), callbacks=[enough])
    return summarize(spec, study, out, log)


WORKER = f"{socket.gethostname()}:{os.getpid()}"  # who works on a trial (a killed worker's trials are retried)


def retry_stale(study, log: Callable[[str], None]) -> None:
    """Trials left RUNNING by a worker of this machine that no longer runs are marked failed (no error of their
    own) and their configurations queued again: the retry finds their run folders (finished runs read, a killed
    one resumed from its checkpoint). Workers on other machines share a database, whose heartbeat does this."""
    import optuna

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or alive(int(pid)):
            continue
        # through the storage: Study.tell would let the grid sampler stop a study that is not optimizing
        study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        log(f"trial {trial.number} was left unfinished by a stopped worker: its configuration runs again")


def retry_interrupted(study, log: Callable[[str], None]) -> None:
    """Configurations whose trials all ended FAILED without an error of their own (a worker interrupted by
    Ctrl-C or a signal, or a stale one above) are queued again: their run folders are read or resumed. A grid
    sampler would otherwise count their grid points as visited and never return to them."""
    import optuna

    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    settled = {
        key_of(t.params)
        for t in trials
        if t.state in (state.COMPLETE, state.RUNNING, state.WAITING)
        or "error" in t.user_attrs
        or (t.state == state.PRUNED and "duplicate" not in t.user_attrs)
    }
    for trial in trials:
        key = key_of(trial.params)
        if trial.state == state.FAIL and trial.params and "error" not in trial.user_attrs and key not in settled:
            study.enqueue_trial(trial.params)
            settled.add(key)
            log(f"trial {trial.number} was interrupted: its configuration runs again")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def summarize(spec: Spec, study, out: Path, log: Callable[[str], None]) -> dict:
    import optuna

    from gankit.files import atomic_write_text
    from gankit.web.compare import write_comparison

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    failed = [
        t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)) if "error" in t.user_attrs
    ]
    pruned = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
        if "duplicate" not in t.user_attrs
    ]
    rows = [
        {
            "trial": t.number,
            "params": t.params,
            "value": t.value,
            "values": t.user_attrs.get("values"),
            "runs": t.user_attrs.get("runs"),
        }
        for t in complete
    ]
    rows += [{"trial": t.number, "params": t.params, "error": t.user_attrs.get("error", "failed")} for t in failed]
    rows += [{"trial": t.number, "params": t.params, "pruned_at_step": t.last_step} for t in pruned]
    summary: dict[str, Any] = {"trials": rows, "complete": len(complete), "failed": len(failed), "pruned": len(pruned)}
    if complete:
        best = study.best_trial
        chosen = spec.settings(best.params)
        keys = {item.split("=", 1)[0] for item in chosen}
        fixed = [item for item in spec.set if item.split("=", 1)[0] not in keys]
        sets = " ".join(f"--set {shlex.quote(item)}" for item in [*fixed, *chosen])
        command = f"gankit train {spec.preset} {sets} --out runs/best"
        summary.update(best={"trial": best.number, "params": best.params, "value": best.value}, command=command)
        folders = [Path(r["runs"]) / f"seed-{s}" for r in rows if "runs" in r and r.get("runs") for s in spec.seeds]
        folders = [f for f in folders if (f / "config.json").is_file()]
        if len(folders) >= 2:
            summary["comparison"] = str(write_comparison(folders, out / "compare.html"))
        log(f"best: trial {best.number}, {best.value:.4g}; train it with:\n  {command}")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
