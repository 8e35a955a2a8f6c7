"""nn.Modules and 2D teachers of the iSeg toolkit (pure: no file I/O, no argument parsing)."""
