"""Geometry: meshes and their files, cameras, the rasterizer (fragments) and the shading and overlays made from
fragments, synthetic shapes, and the mesh graph (geodesics, random walks)."""
