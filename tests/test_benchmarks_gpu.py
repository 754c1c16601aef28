"""The GPU check's CPU half (benchmarks/gpu.py): what runs where no GPU is lent."""

import pytest
import torch

from benchmarks import gpu

pytestmark = pytest.mark.benchmark


@pytest.mark.slow
@pytest.mark.cluster  # the data-parallel row spawns two torch.distributed processes
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU half runs without CUDA")
def test_cpu_half_checks_configurations_and_data_parallel_training(tmp_path, capsys):
    out = tmp_path / "gpu.md"
    code = gpu.main(["--quick", "--configs", "tab-density,ts-exact-reconstruction",
                     "--out", str(out)])
    text = out.read_text()
    assert code == 0, text
    assert "no CUDA device visible: the CPU half only" in capsys.readouterr().out
    for name in ("tab-density", "ts-exact-reconstruction", "KNN (PyOD, CPU)",
                 "ddp-cpu-2-processes"):
        assert f"| {name} |" in text
    ddp = next(line for line in text.splitlines() if line.startswith("| ddp-cpu"))
    cells = [c.strip() for c in ddp.strip("|").split("|")]
    assert cells[1:3] == ["2", "True"] and cells[-1] == "True"  # world, ranks equal, ok


def test_unknown_configuration_is_rejected():
    with pytest.raises(SystemExit):
        gpu.main(["--configs", "tab-nothing"])
