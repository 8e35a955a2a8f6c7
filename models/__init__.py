"""nn.Modules and 2D teachers of the iSeg toolkit, and the code that builds them and loads their checkpoints and
features (build_*.py, as segment-anything's build_sam.py). No argument parsing."""
