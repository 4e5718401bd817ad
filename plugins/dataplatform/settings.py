"""Platform settings, read from the environment (see README, "Configuration")."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPARK_APPS_DIR = REPO_ROOT / "spark_apps"
DEFAULT_MAX_REJECT_SHARE = 0.2
DEFAULT_RETRY_DELAY_SECONDS = 300
# A nightly run of the full inputs takes well under an hour on the compose
# stack; six hours leaves room for a slow cluster before anyone is paged.
DEFAULT_RUN_DEADLINE_SECONDS = 6 * 3600
SPARK_RUNNERS = ("local", "standalone", "yarn", "k8s_pod", "spark_operator", "docker")


@dataclass(frozen=True)
class PlatformSettings:
    data_dir: Path
    warehouse_url: str
    max_reject_share: float
    spark_runner: str
    task_retries: int
    task_retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    # A nightly DAG run still going this long after it was queued is alerted on;
    # None: the DAGs declare no deadline.
    run_deadline_seconds: float | None = DEFAULT_RUN_DEADLINE_SECONDS
    # Container runners (k8s_pod, spark_operator, docker): the platform image
    # and where it runs. The data directory is mounted at the same path there.
    image: str = "data-platform:0.1.0"
    k8s_namespace: str = "data-platform"
    k8s_master: str = "k8s://https://kubernetes.default.svc"
    docker_spark_master: str = "local[*]"
    docker_network: str | None = None
    # Tasks the zte_tad_scaling DAG lays out: 1..N executors.
    scaling_max_executors: int = 4
    # Where platform_metrics pushes run metrics; None: stored, not pushed.
    pushgateway_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PlatformSettings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("PLATFORM_DATA_DIR") or REPO_ROOT / "data").resolve()
        share = float(env.get("PLATFORM_MAX_REJECT_SHARE") or DEFAULT_MAX_REJECT_SHARE)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"PLATFORM_MAX_REJECT_SHARE must be within 0..1, got {share}")
        # An Airflow Variable supplied the way that needs no database at parse
        # time: AIRFLOW_VAR_* (or a secrets backend exporting it).
        runner = (env.get("PLATFORM_SPARK_RUNNER")
                  or env.get("AIRFLOW_VAR_PLATFORM_SPARK_RUNNER") or "local")
        if runner not in SPARK_RUNNERS:
            raise ValueError(f"PLATFORM_SPARK_RUNNER={runner!r} is not one of "
                             f"{', '.join(SPARK_RUNNERS)}")
        return cls(
            data_dir=data_dir,
            warehouse_url=env.get("PLATFORM_WAREHOUSE_URL") or f"sqlite:///{data_dir}/warehouse.db",
            max_reject_share=share,
            spark_runner=runner,
            # Nightly runs retry a flaky cluster; one-shot local runs fail fast.
            task_retries=int(env.get("PLATFORM_TASK_RETRIES") or 2),
            task_retry_delay_seconds=_positive(env, "PLATFORM_TASK_RETRY_DELAY_SECONDS",
                                               DEFAULT_RETRY_DELAY_SECONDS),
            # 0 turns the deadline off: `airflow dags test` of Airflow 3.3.2 fails
            # at the end of any run of a DAG with one (apache/airflow#73428).
            run_deadline_seconds=_positive(env, "PLATFORM_RUN_DEADLINE_SECONDS",
                                           DEFAULT_RUN_DEADLINE_SECONDS, zero_is_off=True),
            image=env.get("PLATFORM_IMAGE") or cls.image,
            k8s_namespace=env.get("PLATFORM_K8S_NAMESPACE") or cls.k8s_namespace,
            k8s_master=env.get("PLATFORM_K8S_MASTER") or cls.k8s_master,
            docker_spark_master=env.get("PLATFORM_DOCKER_SPARK_MASTER") or cls.docker_spark_master,
            docker_network=env.get("PLATFORM_DOCKER_NETWORK") or None,
            scaling_max_executors=int(env.get("PLATFORM_SCALING_MAX_EXECUTORS")
                                      or cls.scaling_max_executors),
            pushgateway_url=env.get("PLATFORM_PUSHGATEWAY_URL") or None,
        )

    @property
    def retry_delay(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.task_retry_delay_seconds)

    @property
    def layout(self):
        from spark_apps.layout import DataLayout

        return DataLayout(str(self.data_dir))


def _positive(env, name: str, default: float, zero_is_off: bool = False) -> float | None:
    raw = env.get(name)
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value == 0 and zero_is_off:
        return None
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value:g}")
    return value
