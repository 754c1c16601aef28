"""The Spark recipe of the scaling-out guide: a broadcast detector over mapInPandas."""

import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a JDK"),
              pytest.mark.cluster, pytest.mark.slow]  # a local Spark session


def test_spark_dataframe_scored_with_map_in_pandas_and_a_broadcast_detector(monkeypatch):
    from pyspark.sql import SparkSession

    from skdiffad import TabDiffusionDetector

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # the workers run this Python
    spark = (SparkSession.builder.master("local[2]").appName("skdiffad-test")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(1500, 3)), columns=["a", "b", "c"])
        frame.loc[frame.index[-20:], "b"] += 6
        frame["id"] = np.arange(len(frame))
        features = ["a", "b", "c"]
        detector = TabDiffusionDetector(random_state=0).fit(frame[features].iloc[:600])
        shared = spark.sparkContext.broadcast(detector)

        def score(batches):
            model = shared.value  # unpickled once per Python worker, then reused
            for batch in batches:
                yield batch.assign(score=model.decision_function(batch[features]),
                                   label=model.predict(batch[features]))

        scored = spark.createDataFrame(frame, schema="a double, b double, c double, id long")
        scored = scored.repartition(3).mapInPandas(
            score, schema="a double, b double, c double, id long, score double, label long")
        result = scored.toPandas().sort_values("id")
    finally:
        spark.stop()
    np.testing.assert_array_equal(result["score"].to_numpy(),
                                  detector.decision_function(frame[features]))
    np.testing.assert_array_equal(result["label"].to_numpy(), detector.predict(frame[features]))
    assert result["label"].to_numpy()[-20:].mean() > 0.9
