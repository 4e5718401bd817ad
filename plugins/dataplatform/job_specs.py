"""The platform's Spark jobs, one definition each.

DAGs wire these into tasks; ``dataplatform.k8s_manifests`` renders the same
definitions as SparkApplication templates for ``kubectl``. Arguments may be
plain values, Jinja templates or XComArgs.
"""

from __future__ import annotations

from dataplatform.spark_jobs import SparkJob

# The default model: the seed's decision tree on the honest `flow` features.
DEFAULT_TRAINING = {"algorithm": "decision_tree", "feature_set": "flow", "max_depth": 5,
                    "max_bins": 32, "sample_fraction": 1.0}
TRAIN_PARAM_TEMPLATES = {
    "algorithm": "{{ params.algorithm }}",
    "feature_set": "{{ params.feature_set }}",
    "max_depth": "{{ params.max_depth }}",
    "max_bins": "{{ params.max_bins }}",
    "sample_fraction": "{{ params.sample_fraction }}",
}


def _data_args(ds, data_dir) -> list:
    return ["--ds", ds, "--data-dir", str(data_dir)]


def clean_and_compute_statistics_job(ds, data_dir) -> SparkJob:
    """Clean the date's CSVs and compute its statistics, in one Spark session."""
    return SparkJob("clean_and_compute_statistics", "students/clean.py",
                    _data_args(ds, data_dir), conf={
                        # Splits of 32 MiB, not 128: a 10M-row date then spreads
                        # evenly over the cores instead of ending on one task.
                        "spark.sql.files.maxPartitionBytes": "32m",
                    })


def ingest_traffic_job(ds, data_dir) -> SparkJob:
    return SparkJob("ingest_traffic", "zte_tad/ingest.py", _data_args(ds, data_dir), conf={
        # A date is hundreds of small capture files, read by path: list them
        # on the driver (milliseconds) rather than in a Spark job (seconds).
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    })


def train_traffic_job(ds, data_dir, model_version, *, task_id: str = "train_traffic",
                      executors="{{ params.executors }}", **params) -> SparkJob:
    """Training with the DAG's params unless given; ``params`` as in TRAIN_PARAM_TEMPLATES."""
    unknown = set(params) - set(TRAIN_PARAM_TEMPLATES)
    if unknown:
        raise TypeError(f"unknown training params: {sorted(unknown)}")
    chosen = {**TRAIN_PARAM_TEMPLATES, **params}
    arguments = [*_data_args(ds, data_dir), "--model-version", model_version]
    for name, value in chosen.items():
        arguments += ["--" + name.replace("_", "-"), str(value)]
    # In local mode, the default, the driver is the only JVM: at 2g, a 10M-packet
    # date's cached rows and the tree's binned copy of them spill to disk
    # (`make bench` on 2 cores: the training job took 229 s at 2g, 186 s at 4g).
    # Both copies live until the fits end: about 3 GB at 10M packets. A heap
    # of fixed size leaves them an old generation they fit in; the default
    # one grows by full collections and keeps two thirds of the heap for it.
    # At 4g the collector still took a quarter of the job; at 5g, with a
    # 1 GiB young generation, it collects half as often (bench/README.md:
    # 60.9 -> 50.6 s at 4g; two pairs 58.1, 56.2 -> 51.2, 49.8 s at 5g).
    # Cluster drivers get the same memory: it is one setting for every runner.
    memory = "5g"
    return SparkJob(task_id, "zte_tad/train.py", arguments, executors=executors,
                    driver_memory=memory, local_driver_java_options=(
                        # Metaspace past its initial 20 MiB ran two full collections
                        # of the whole heap (0.6 s at 10M).
                        f"-Xms{memory} -Xmn1g -XX:MetaspaceSize={256 * 2 ** 20}"),
                    conf={
                        # The cached rows are mostly feature vectors, which the
                        # cache does not compress; trying cost more than it saved
                        # (measured in local mode; clusters get it too).
                        "spark.sql.inMemoryColumnarStorage.compressed": "false",
                    })


def scaling_model_version(executors: int) -> str:
    return f"scaling-{executors}x"


def scaling_train_job(ds, data_dir, executors: int) -> SparkJob:
    """The default model with ``executors`` executors of one core, evaluated, not saved."""
    job = train_traffic_job(ds, data_dir, scaling_model_version(executors),
                            task_id=f"train_with_{executors}_executors", executors=executors,
                            **DEFAULT_TRAINING)
    # A cluster's executors hold the data here, so the driver keeps the default
    # memory rather than the local-mode 5g of train_traffic_job.
    return SparkJob(job.task_id, job.application, [*job.arguments, "--no-save-model"],
                    executors=executors, conf={
                        **job.conf,
                        # Start only once every executor asked for has registered,
                        # or the timing would be of fewer executors than reported.
                        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
                        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
                    })
