"""Shared by the many-meshes tests: what a mesh's training left on disk, and bit equality of two runs' files."""
import torch


def trained_files(mesh_folders):
    """{mesh: (pred_f.pth tensor, decoder weights)} of {mesh: its results folder (holding encoder/ and decoder/)}."""
    files = {}
    for mesh, folder in mesh_folders.items():
        decoder = torch.load(folder / "decoder" / "decoder_checkpoint.pth", weights_only=True)
        files[mesh] = (torch.load(folder / "encoder" / "pred_f.pth", weights_only=True),
                       {**decoder["attention_state_dict"], **decoder["model_state_dict"]})
    return files


def assert_same_training(a, b):
    """Two runs' features and decoder weights, bit for bit, mesh by mesh."""
    assert a.keys() == b.keys()
    for mesh in a:
        assert torch.equal(a[mesh][0], b[mesh][0]), mesh
        assert a[mesh][1].keys() == b[mesh][1].keys()
        assert all(torch.equal(a[mesh][1][key], b[mesh][1][key]) for key in a[mesh][1]), mesh
