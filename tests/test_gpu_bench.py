"""``benchmarks/gpu.py --dry-run``: the GPU machine's command runs end to end at tiny sizes on
the CPU, so that whoever has a GPU at hand finds it working (its figures are not asserted:
speed is a benchmark's business)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_bench_dry_run(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    by_section: dict[str, list[dict]] = {}
    for r in rows:
        by_section.setdefault(r["section"], []).append(r)
    assert not [r for r in rows if r["case"] in ("failed", "build failed")], rows
    for section in ("nets", "detect", "camera", "e2e"):
        measured = [r for r in by_section[section] if r["value"] is not None and r["unit"] != "s"]
        assert measured and all(r["value"] > 0 for r in measured), (section, by_section[section])
    # The solver fits the exact masks it is given (the same people, whatever the machine).
    camera = [r for r in by_section["camera"] if r["unit"] == "persons/s"]
    for r in camera:
        miou = float(r["note"].split("mIoU ")[1].split(",")[0])
        assert miou > 0.95, r
    # Without CUDA nvdiffrast is skipped, and the table says why.
    assert by_section["nvdiffrast"][0]["case"] == "skipped" and "CUDA" in by_section["nvdiffrast"][0]["note"]
    shares = [r["value"] for r in by_section["e2e"] if r["unit"] == "% of time"]
    assert abs(sum(shares) - 100) < 1e-6
    assert "total wall time" in proc.stdout
