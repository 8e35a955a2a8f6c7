"""The encoder's stages: teacher embeddings of random views (views.py), distillation into the feature field and the
qualitative test (training.py)."""
