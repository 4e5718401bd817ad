"""Platform settings, read from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPARK_APPS_DIR = REPO_ROOT / "spark_apps"
DEFAULT_MAX_REJECT_SHARE = 0.2


@dataclass(frozen=True)
class PlatformSettings:
    data_dir: Path
    warehouse_url: str
    max_reject_share: float
    spark_runner: str
    task_retries: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PlatformSettings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("PLATFORM_DATA_DIR") or REPO_ROOT / "data").resolve()
        share = float(env.get("PLATFORM_MAX_REJECT_SHARE") or DEFAULT_MAX_REJECT_SHARE)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"PLATFORM_MAX_REJECT_SHARE must be within 0..1, got {share}")
        return cls(
            data_dir=data_dir,
            warehouse_url=env.get("PLATFORM_WAREHOUSE_URL") or f"sqlite:///{data_dir}/warehouse.db",
            max_reject_share=share,
            spark_runner=env.get("PLATFORM_SPARK_RUNNER") or "local",
            # Nightly runs retry a flaky cluster; one-shot local runs fail fast.
            task_retries=int(env.get("PLATFORM_TASK_RETRIES") or 2),
        )

    @property
    def layout(self):
        from spark_apps.layout import DataLayout

        return DataLayout(str(self.data_dir))
