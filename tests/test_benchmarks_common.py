"""Tests of ``benchmarks/_common.py``, what every benchmark script shares: data folders,
the command line, the per-run CSV that lets a run resume, and the summary pieces."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from benchmarks import _common as common
except ModuleNotFoundError:  # pytest's importlib mode leaves the repository root off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import _common as common

pytestmark = pytest.mark.benchmark

COLUMNS = ["series", "seed", "score", "error"]


def test_default_data_dir_follows_the_script_not_the_working_directory(monkeypatch, tmp_path):
    shared = Path(common.__file__).resolve().parents[1].parent / "shared" / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)  # a decoy next to the working directory
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("SKDIFFAD_DATA", raising=False)
    assert common.resolve_data_dir() == common.resolve_data_dir(None) == shared
    monkeypatch.setenv("SKDIFFAD_DATA", str(tmp_path / "env"))
    assert common.resolve_data_dir() == tmp_path / "env"
    assert common.resolve_data_dir(str(tmp_path / "given")) == tmp_path / "given"


def _write_runs(path, rows):
    for row in rows:
        common.append_row(path, row, COLUMNS)


def test_runs_csv_round_trip_keeps_text_and_empty_errors(tmp_path):
    path = tmp_path / "runs.csv"
    _write_runs(path, [{"series": "007", "seed": 0, "score": 0.5, "error": "", "extra": 1},
                       {"series": "010", "seed": 1, "score": np.nan, "error": "ValueError: x"}])
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)  # one header, no extra key
    runs = common.read_runs(path, text_columns=("series", "not_a_column"))
    assert runs["series"].tolist() == ["007", "010"]
    assert runs["error"].tolist() == ["", "ValueError: x"]
    assert common.read_runs(path)["series"].tolist() == [7, 10]  # numbers unless asked


def test_start_runs_csv_resumes_or_starts_afresh(tmp_path):
    path = tmp_path / "deep" / "runs.csv"
    assert common.start_runs_csv(None, True, COLUMNS)[0] is None
    made, previous = common.start_runs_csv(path, True, COLUMNS)
    assert made == path and path.parent.is_dir() and previous.empty
    _write_runs(path, [{"series": "1", "seed": 0, "score": 0.1, "error": ""}])
    _, previous = common.start_runs_csv(path, True, COLUMNS, ("series",))
    assert previous["series"].tolist() == ["1"]
    _, previous = common.start_runs_csv(path, False, COLUMNS)
    assert previous.empty and list(previous.columns) == COLUMNS and not path.exists()


def test_resuming_a_csv_written_before_a_column_existed_rewrites_its_header(tmp_path):
    path = tmp_path / "runs.csv"
    older = [c for c in COLUMNS if c != "score"]
    path.write_text(",".join(older) + "\n" + "a,0,\n")
    _, previous = common.start_runs_csv(path, True, COLUMNS, ("series",))
    assert previous["series"].tolist() == ["a"] and previous["score"].isna().all()
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    common.append_row(path, {"series": "b", "seed": 1, "score": 0.5, "error": ""}, COLUMNS)
    again = common.read_runs(path, ("series",))
    assert again["series"].tolist() == ["a", "b"]
    assert np.isnan(again["score"][0]) and again["score"][1] == 0.5


def test_results_csv_backs_up_an_earlier_file_unless_resuming(tmp_path, capsys):
    path = common.results_csv(tmp_path / "out", "runs.csv", resume=False)
    path.write_text("old\n")
    assert common.results_csv(tmp_path / "out", "runs.csv", resume=True) == path
    assert path.read_text() == "old\n"
    common.results_csv(tmp_path / "out", "runs.csv", resume=False)
    assert not path.exists() and path.with_suffix(".csv.bak").read_text() == "old\n"
    assert "--resume" in capsys.readouterr().out


def test_merge_run_files_joins_shards_and_refuses_duplicates(tmp_path):
    for shard, series in (("s1", "a"), ("s2", "b")):
        (tmp_path / shard).mkdir()
        _write_runs(tmp_path / shard / "runs.csv",
                    [{"series": series, "seed": 0, "score": 0.5, "error": ""}])
    merged = common.merge_run_files([tmp_path / "s1", tmp_path / "s2"], "runs.csv",
                                    ["series", "seed"], tmp_path / "all")
    assert merged["series"].tolist() == ["a", "b"]
    assert len(pd.read_csv(tmp_path / "all" / "runs.csv")) == 2
    with pytest.raises(SystemExit, match="more than one"):
        common.merge_run_files([tmp_path / "s1"] * 2, "runs.csv", ["series", "seed"],
                               tmp_path / "dup")
    with pytest.raises(SystemExit, match="no results"):
        common.merge_run_files([tmp_path / "none"], "runs.csv", ["series"], tmp_path / "x")


def test_error_message_is_one_short_line():
    assert common.error_message(ValueError("a\n  b")) == "ValueError: a b"
    assert len(common.error_message(RuntimeError("x" * 1000))) == 300
    assert common.error_message(common.NotApplicable("constant")) == (
        f"{common.NOT_APPLICABLE}: constant")


def test_selection_by_name_shard_and_substring():
    registry = {"KNN": 1, "IForest": 2, "Diffusion-default": 3}
    assert list(common.select_from(registry)) == list(registry)
    assert common.select_from(registry, "diffusion-default, knn") == {"KNN": 1,
                                                                      "Diffusion-default": 3}
    with pytest.raises(ValueError, match="unknown detector"):
        common.select_from(registry, ["LOF"])
    assert common.choose_names(["mnist1", "fashion0", "mnist3"], "MNIST") == ["mnist1", "mnist3"]
    assert common.choose_names(["a", "b"], None) == ["a", "b"]
    assert common.take_shard(list("abcde"), (2, 2)) == ["b", "d"]
    assert common.take_shard(list("ab"), None) == ["a", "b"]
    assert common.parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "x"):
        with pytest.raises(ValueError, match="shard"):
            common.parse_shard(bad)


def test_run_arguments_and_command_line():
    parser = argparse.ArgumentParser()
    common.add_run_arguments(parser, device="cpu", out=common.RESULTS_DIR / "fusion")
    args = parser.parse_args([])
    assert (args.data_dir, args.device, args.threads) == (None, "cpu", 1)
    assert args.out == str(common.RESULTS_DIR / "fusion")
    assert "benchmarks/results/fusion" in parser.format_help()
    assert common.command_line("benchmarks.x", ["--a", "1"]) == "python -m benchmarks.x --a 1"
    assert common.command_line("benchmarks.x", []) == "python -m benchmarks.x"


def test_summary_pieces():
    frame = pd.DataFrame({"auroc": [0.91234, np.nan], "runs": [3, 4], "note": ["ok", "n/a"]},
                         index=["KNN", "LOF"])
    assert common.markdown_table(frame, "detector").splitlines() == [
        "| detector | auroc | runs | note |", "|---|---:|---:|---:|",
        "| KNN | 0.912 | 3 | ok |", "| LOF | – | 4 | n/a |"]
    assert common.plain_table([{"a": 1.5}], ["a", "b"]).splitlines() == [
        "| a | b |", "|---|---|", "| 1.5 |  |"]
    assert common.summary_lines("T", ["x"]) == ["# T", "", "- x"]
    assert common.elapsed_text(754) == "754 s (12.6 min)"
    assert common.merged_from(["s1", "s2"]) == "Merged from: s1, s2"
    assert common.dataset_order(["10_b", "2_a", "x", "2_a"]) == ["2_a", "10_b", "x"]
    tables = {"NAB": frame.rename_axis("detector")}
    assert list(common.stacked_tables(tables).columns) == ["collection", "detector", "auroc",
                                                           "runs", "note"]
    assert common.stacked_tables({}).empty
