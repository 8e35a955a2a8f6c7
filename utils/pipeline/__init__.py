"""The four stages on one mesh, in-process (encoder views → encoder training → decoder data → decoder training),
with one table of budgets: train.py, evaluate.py and demo/make_demo.py all run them through here."""
