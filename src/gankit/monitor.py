"""Training alarms: the failure patterns GAN users most often miss until it is too late.

- D wins: D classifies real and generated batches almost perfectly (accuracy at
  threshold 0 of at least ``d_accuracy_limit``) for ``patience`` log intervals
  in a row; G's gradients then vanish or G collapses.
- Coverage or recall collapse: an evaluation's coverage or recall falls below
  ``collapse_fraction`` of the best seen so far in this run: the generator is
  losing modes (Goodfellow's "Helvetica scenario").
- FID rising: FID got worse ``patience`` evaluations in a row; quality has
  peaked, and best/generator.safetensors holds the best generator so far.

Each alarm is raised once when its condition starts and again only after it
has cleared.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Monitor:
    d_accuracy_limit: float = 0.99
    collapse_fraction: float = 0.5
    patience: int = 3
    _d_streak: int = 0
    _fid_streak: int = 0
    _last_fid: float | None = None
    _best: dict[str, float] = dataclasses.field(default_factory=dict)
    _active: set[str] = dataclasses.field(default_factory=set)

    def _raise(self, name: str, condition: bool, message: str) -> list[str]:
        if condition and name not in self._active:
            self._active.add(name)
            return [message]
        if not condition:
            self._active.discard(name)
        return []

    def state_dict(self) -> dict[str, Any]:
        """The alarm state (streaks, best values, active alarms), saved in checkpoints so a resumed run
        neither repeats an alarm nor forgets a streak."""
        return {
            "d_streak": self._d_streak,
            "fid_streak": self._fid_streak,
            "last_fid": self._last_fid,
            "best": dict(self._best),
            "active": sorted(self._active),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self._d_streak, self._fid_streak = int(state["d_streak"]), int(state["fid_streak"])
            self._last_fid = None if state["last_fid"] is None else float(state["last_fid"])
            self._best = {str(k): float(v) for k, v in dict(state["best"]).items()}
            self._active = {str(name) for name in state["active"]}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"damaged monitor state {state!r} ({error})") from error

    def on_log(self, row: dict[str, Any]) -> list[str]:
        accuracy = row.get("d_accuracy")
        if accuracy is None:
            return []
        self._d_streak = self._d_streak + 1 if accuracy >= self.d_accuracy_limit else 0
        return self._raise(
            "d_wins",
            self._d_streak >= self.patience,
            f"step {row['step']}: D accuracy has been >= {self.d_accuracy_limit:.2f} for {self._d_streak} log "
            "intervals (D wins; G learns little). Try a lower train.lr_d, loss.real_label=0.9, or more G capacity.",
        )

    def on_eval(self, step: int, metrics: dict[str, float]) -> list[str]:
        alarms = []
        for key in ("coverage", "recall"):
            if key not in metrics:
                continue
            best = max(self._best.get(key, metrics[key]), metrics[key])
            self._best[key] = best
            alarms += self._raise(
                f"{key}_collapse",
                best > 0 and metrics[key] < self.collapse_fraction * best,
                f"step {step}: {key} fell to {metrics[key]:.3f} (best {best:.3f}): the generator is losing modes.",
            )
        if "fid" in metrics:
            rising = self._last_fid is not None and metrics["fid"] > self._last_fid
            self._fid_streak = self._fid_streak + 1 if rising else 0
            self._last_fid = metrics["fid"]
            alarms += self._raise(
                "fid_rising",
                self._fid_streak >= self.patience,
                f"step {step}: FID has risen {self._fid_streak} evaluations in a row (now {metrics['fid']:.4g}); "
                "quality peaked earlier: see best/generator.safetensors.",
            )
        return alarms
