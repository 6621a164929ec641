"""bench/measurements.py: the page `make bench` writes (docs/measurements.md)."""
import datetime
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("measurements", ROOT / "bench" / "measurements.py")
measurements = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measurements)

NOW = datetime.datetime(2026, 12, 6, 13, 5, tzinfo=datetime.timezone.utc)


def outputs(tmp_path, **texts):
    folder = tmp_path / "bench"
    folder.mkdir()
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    return folder


def test_the_page_is_dated_names_the_machine_and_keeps_each_output(tmp_path):
    folder = outputs(tmp_path, figure_latency="median 3.7 ms\n", optimizer_step="Adam 0.27x\n")
    page = measurements.page(folder, now=NOW)
    assert "Written by `make bench` on 2026-12-06 13:05 UTC" in page
    for key in ("| CPU |", "| cores (logical) / usable |", "| Python |", "| torch |", "| numpy |"):
        assert key in page
    # in the benchmarks' order (optimizer_step first), each verbatim in a code block
    assert page.index("Adam 0.27x") < page.index("median 3.7 ms")
    assert "```\nAdam 0.27x\n```" in page


def test_the_recorded_part_survives_a_rewrite(tmp_path):
    folder = outputs(tmp_path, clip_grad_norm="1.0x\n")
    kept = f"{measurements.BEGIN}\n| make test | 13 min |\n{measurements.END}"
    page = measurements.page(folder, previous="# old\n" + kept + "\nold tail", now=NOW)
    assert kept in page and "old tail" not in page
    assert measurements.page(folder, previous=page, now=NOW) == page   # idempotent


def test_no_outputs_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no <benchmark>.txt"):
        measurements.page(outputs(tmp_path), now=NOW)


def test_the_committed_page_was_written_by_the_script():
    text = (ROOT / "docs" / "measurements.md").read_text()
    assert text.startswith("# Measurements\n\nWritten by `make bench` on ")
    assert measurements.BEGIN in text and measurements.END in text
