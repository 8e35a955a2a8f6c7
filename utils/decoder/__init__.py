"""The decoder's stages: click → mask samples (samples.py, their format and reader; generation.py, data_generation.py),
click lists (clicks.py), training (training.py) and what decoder.py --mode test writes (outputs.py)."""
