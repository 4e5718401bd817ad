"""Spark jobs of the platform: pure transforms plus a thin ``main`` per job.

Nothing here imports Airflow: the package is shipped as-is to any cluster.
"""
