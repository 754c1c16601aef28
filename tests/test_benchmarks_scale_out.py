"""The scale-out benchmark's fit job (benchmarks/scale_out.py) at a toy size, on the real
sets (the scoring jobs' machinery is tests/test_dask.py's)."""

import pandas as pd
import pytest

pytest.importorskip("distributed")

from benchmarks import scale_out  # noqa: E402

pytestmark = pytest.mark.benchmark


@pytest.mark.slow
@pytest.mark.cluster  # Dask LocalClusters of worker processes
def test_scale_out_fit_job_streams_the_table_and_fits_the_series_blockwise(shared_data,
                                                                          tmp_path):
    scale_out.main(["--data-dir", str(shared_data), "--rows", "12000", "--steps", "9000",
                    "--chunk-rows", "4000", "--chunk-steps", "3000", "--workers", "1",
                    "--jobs", "fit",
                    "--out", str(tmp_path)])
    runs = pd.read_csv(tmp_path / scale_out.CSV_NAME)
    table_fit = runs[runs["job"] == "table fit (density network)"]
    streamed = table_fit["exact"].iloc[-1]
    assert "1000 steps" in streamed and "3 of 3 blocks read" in streamed
    series_fit = runs[runs["job"] == "series fit (exact)"].set_index("mode")
    # fewer steps than the scaling sample: the Dask fit is the in-memory fit
    assert series_fit.loc["Dask, 1 workers", "exact"].startswith(
        "training scores' correlation 1.0000; threshold 1.000x; scales within 0.0%")
    assert "series fit (exact)" in (tmp_path / scale_out.SUMMARY_NAME).read_text()
