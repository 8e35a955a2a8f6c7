"""evaluate.py: labelled collections (datasets.py), simulated clicks and measures (click_simulation.py, protocol.py),
baselines (baselines.py), the run over a collection (run.py) and its report (report.py)."""
