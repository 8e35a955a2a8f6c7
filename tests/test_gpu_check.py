"""benchmarks/gpu_check.sh, the prepared GPU check, in its CPU dry run: every part runs and fills its rows, and a
part whose package is missing is skipped with a note while the others still run — so that the one run a GPU gets
does not fail on something a CPU could have caught."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dry_run(tmp_path, environment=None):
    out = tmp_path / "gpu_check.md"
    done = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--dry-run", "--out", str(out)],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, "OUT": "", **(environment or {})})
    rows = [line.split(" | ") for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    return done, rows[1:]  # without the header


def test_the_dry_run_fills_every_part_of_the_table(tmp_path):
    done, rows = dry_run(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    parts = [row[0].lstrip("| ") for row in rows]
    assert parts.count("rasterizer, ms per view") == 4 and parts.count("decoder, ms per click (fp32)") == 3
    assert parts.count("teacher image encoding, s per 224² view") == 2
    stages = [row[1] for row in rows if row[0].lstrip("| ").startswith("quick pipeline")]
    assert stages == ["encoder_views", "encoder_training", "decoder_data", "decoder_training", "all four stages"]
    assert not any("failed" in row[-1] or "skipped" in row[-1] for row in rows[1:]), rows
    assert all(row[3].endswith(("ms", " s")) for row in rows if row[0] != "| CUDA tests"), rows  # CPU figures
    assert "skipped" in rows[0][-1]  # the CUDA tests, on a machine without a GPU


def test_a_missing_package_skips_its_parts_and_the_others_run(tmp_path):
    fake = tmp_path / "without_trimesh" / "trimesh"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'trimesh'\", name='trimesh')\n")
    done, rows = dry_run(tmp_path, {"PYTHONPATH": str(fake.parent)})
    by_part = {row[0].lstrip("| "): row for row in rows}
    assert by_part["rasterizer"][-1].startswith("skipped: needs trimesh"), rows
    assert sum(row[0] == "| decoder, ms per click (fp32)" for row in rows) == 3  # the next part still ran
