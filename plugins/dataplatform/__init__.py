"""Airflow-side package of the platform: settings, the Spark task factory,
assets, publishing and the local developer entry points.

Modules here are imported by DAG files at parse time, so keep their top-level
imports light (no pyspark, pandas or SQLAlchemy outside functions).
"""
