#!/bin/bash
# The platform image's entrypoint.
#
# Spark on Kubernetes starts its pods with `driver ...` or `executor` as the
# container arguments and leaves it to the image to turn them into a JVM
# command line; the settings come in environment variables Spark sets on the
# pod. The pip pyspark distribution ships no such script, so this is ours.
# Every other command (airflow, spark-class, spark-submit) runs as given.
set -euo pipefail

# tini reaps the JVMs and Python workers a task leaves behind.
run() {
  if [[ -x /usr/bin/tini ]]; then exec /usr/bin/tini -s -- "$@"; else exec "$@"; fi
}

case "${1:-}" in
  driver)
    shift
    run spark-submit --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    # Spark hands the executor's JVM options over as SPARK_JAVA_OPT_0, _1, ...
    mapfile -t java_opts < <(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | cut -d= -f2-)
    classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:$SPARK_HOME/jars/*"
    run "$JAVA_HOME/bin/java" "${java_opts[@]}" \
      "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" -cp "$classpath" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  *)
    run "$@"
    ;;
esac
