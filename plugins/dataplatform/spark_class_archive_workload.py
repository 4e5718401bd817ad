"""The class archive's workload: the platform's Spark jobs, one after the
other in one driver JVM, on one date of the committed samples.

    spark-submit spark_class_archive_workload.py DS DATA_DIR
"""

import sys

from dataplatform import job_specs
from spark_apps.students import clean
from spark_apps.zte_tad import ingest, train


def main(ds: str, data_dir: str) -> None:
    clean.main(job_specs.clean_and_compute_statistics_job(ds, data_dir).arguments)
    ingest.main(job_specs.ingest_traffic_job(ds, data_dir).arguments)
    train.main(job_specs.train_traffic_job(ds, data_dir, "class-archive", executors=1,
                                           **job_specs.DEFAULT_TRAINING).arguments)


if __name__ == "__main__":
    main(*sys.argv[1:3])
