"""The decoder: attention maths by hand, symmetries, checkpoints in the original's layout, restricted training, the
fast inference path, decoder.py's outputs and errors."""
import math

import pytest
import torch

from models.build_decoder import DecoderSettings, load_decoder
from models.build_feature_field import load_features
from models.decoder_head import DecoderHead
from models.decoder_predictor import DecoderPredictor
from models.interactive_attention import InteractiveAttention
from utils.decoder.clicks import click_suffix, parse_click, parse_clicks
from utils.decoder.samples import Samples, pack_masks
from utils.decoder.training import _checkpoint, batch_loss
from utils.errors import InputError
from utils.geometry.mesh import mesh_from_arrays
from utils.geometry.shapes import two_spheres


def test_attention_worked_out_by_hand():
    attention = InteractiveAttention(dim=2, use_q=False, use_k=False, use_v=False, scale=False)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = attention(features, torch.tensor([[0, 1]]), torch.tensor([[True, False]]))[0]
    e = math.e
    assert torch.allclose(out[0], torch.tensor([e / (e + 1), 1 / (e + 1)]))  # logits (1, 0)
    assert torch.allclose(out[1], torch.tensor([1 / (e + 1), e / (e + 1)]))  # logits (0, 1)
    assert torch.allclose(out[2], torch.tensor([0.5, 0.5]))  # logits (1, 1)


def test_negative_clicks_use_their_own_key_and_value_maps_and_logits_are_scaled():
    attention = InteractiveAttention(dim=4)
    with torch.no_grad():
        for layer in (attention.W_Q, attention.W_Kp, attention.W_Vp):
            layer.weight.copy_(torch.eye(4))
            layer.bias.zero_()
        attention.W_Kn.weight.copy_(-torch.eye(4))
        attention.W_Kn.bias.zero_()
        attention.W_Vn.weight.copy_(2 * torch.eye(4))
        attention.W_Vn.bias.fill_(1.0)
    features = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [2.0, 2.0, 0, 0]])
    out = attention(features, torch.tensor([[0, 1]]), torch.tensor([[True, False]]))[0]
    # vertex 2: q = (2, 2, 0, 0); k+ = (2, 0, 0, 0) → 4; k− = −(0, 2, 0, 0) → −4; both ÷ √4 = 2
    weights = torch.softmax(torch.tensor([2.0, -2.0]), dim=0)
    value_positive, value_negative = torch.tensor([2.0, 0, 0, 0]), torch.tensor([1.0, 5.0, 1.0, 1.0])
    assert torch.allclose(out[2], weights[0] * value_positive + weights[1] * value_negative)


def random_modules(seed=0):
    torch.manual_seed(seed)
    return InteractiveAttention(), DecoderHead()


def test_click_order_does_not_matter_and_a_duplicated_click_equals_the_single_click():
    attention, head = random_modules()
    features = torch.randn(50, 256)
    predictor = DecoderPredictor(attention, head, features)
    a = predictor.predict(torch.tensor([3, 17, 40]), torch.tensor([True, False, True]))
    b = predictor.predict(torch.tensor([40, 3, 17]), torch.tensor([True, True, False]))
    assert torch.allclose(a, b, atol=1e-6)
    single = predictor.predict(torch.tensor([7]), torch.tensor([True]))
    double = predictor.predict(torch.tensor([7, 7]), torch.tensor([True, True]))
    assert torch.allclose(single, double, atol=1e-6)
    assert not torch.allclose(single, predictor.predict(torch.tensor([8]), torch.tensor([True])), atol=1e-4)


def test_the_fast_inference_path_matches_the_modules():
    attention, head = random_modules(1)
    predictor = DecoderPredictor(attention, head, torch.randn(300, 256))
    for clicks, positive in (([5], [True]), ([5, 9, 200], [True, False, False])):
        fast = predictor.predict(torch.tensor(clicks), torch.tensor(positive))
        plain = predictor.predict_plain(torch.tensor(clicks), torch.tensor(positive))
        assert fast.shape == (300,) and (fast > 0).all() and (fast < 1).all()
        assert (fast - plain).abs().max() < 1e-5


def test_module_sizes_and_keys_are_the_originals():
    attention, head = random_modules()
    assert sum(p.numel() for p in attention.parameters()) == 328_960
    assert sum(p.numel() for p in head.parameters()) == 1_257_986
    assert len(head.mlp) == 47
    assert set(attention.state_dict()) == {f"W_{n}.{p}" for n in ("Q", "Kp", "Kn", "Vp", "Vn")
                                           for p in ("weight", "bias")}
    assert "mlp.0.weight" in head.state_dict() and "mlp.45.weight" in head.state_dict()


def test_checkpoints_round_trip_and_the_originals_layout_loads(tmp_path):
    attention, head = random_modules(2)
    optimizer = torch.optim.Adam(list(attention.parameters()) + list(head.parameters()))
    path = tmp_path / "ours.pth"
    torch.save(_checkpoint(attention, head, optimizer, 1, 0, torch.arange(4), [0.5], 4, {}), path)
    loaded_attention, loaded_head = load_decoder(str(path), DecoderSettings())
    features = torch.randn(20, 256)
    clicks, positive = torch.tensor([1, 2]), torch.tensor([True, False])
    assert torch.equal(DecoderPredictor(attention, head, features).predict(clicks, positive),
                       DecoderPredictor(loaded_attention, loaded_head, features).predict(clicks, positive))
    # the original's dict, saved from DataParallel-wrapped modules
    original = {"attention_state_dict": {"module." + k: v for k, v in attention.state_dict().items()},
                "model_state_dict": {"module." + k: v for k, v in head.state_dict().items()},
                "optimizer_state_dict": optimizer.state_dict(), "epoch": 4, "batch_idx": 10,
                "shuffled_indices": [3, 1, 2], "losses": [0.7, 0.6], "num_batch": 11}
    torch.save(original, tmp_path / "original.pth")
    loaded_attention, loaded_head = load_decoder(str(tmp_path / "original.pth"), DecoderSettings())
    assert torch.equal(DecoderPredictor(attention, head, features).predict(clicks, positive),
                       DecoderPredictor(loaded_attention, loaded_head, features).predict(clicks, positive))
    with pytest.raises(InputError, match="does not fit --depth 13"):
        load_decoder(str(path), DecoderSettings(depth=13))


def test_features_must_match_the_mesh_and_load_from_a_grad_tensor(tmp_path):
    vertices, faces, _ = two_spheres(subdivisions=1)
    mesh = mesh_from_arrays(vertices, faces)
    torch.save(torch.randn(mesh.num_vertices, 256, requires_grad=True), tmp_path / "f.pth")
    features = load_features(str(tmp_path / "f.pth"), mesh)
    assert not features.requires_grad and features.dtype == torch.float32
    torch.save(torch.randn(mesh.num_vertices - 1, 256), tmp_path / "short.pth")
    with pytest.raises(InputError, match=f"have {mesh.num_vertices - 1} rows"):
        load_features(str(tmp_path / "short.pth"), mesh)


def three_view_training_case(seed: int, res: int):
    """Two spheres, random modules and features, and a batch of 3 samples (one of each kind) with random masks."""
    vertices, faces, _ = two_spheres(subdivisions=2)
    mesh = mesh_from_arrays(vertices, faces)
    attention, head = random_modules(seed)
    features = torch.randn(mesh.num_vertices, 256) * 0.3
    count = 3
    masks = torch.rand(count, res, res) > 0.5
    batch = Samples(vertices=torch.tensor([[0, 0], [5, 200], [7, 9]]),
                    signs=torch.tensor([[1, 1], [1, 1], [1, -1]], dtype=torch.int8),
                    kind=torch.tensor([0, 1, 2], dtype=torch.int8), view=torch.arange(count),
                    elev=torch.tensor([0.1, -0.4, 0.9]), azim=torch.tensor([0.0, 2.0, 4.0]),
                    points=torch.zeros(count, 2, 2), masks=pack_masks(masks), score=torch.ones(count), res=res)
    return mesh, attention, head, features, batch


def test_restricted_training_gives_the_full_loss_and_gradients():
    mesh, attention, head, features, batch = three_view_training_case(3, 48)
    parameters = list(attention.parameters()) + list(head.parameters())
    restricted = batch_loss(attention, head, features, mesh, batch, 2.0, restricted=True)
    restricted_grads = torch.autograd.grad(restricted, parameters)
    full = batch_loss(attention, head, features, mesh, batch, 2.0, restricted=False)
    full_grads = torch.autograd.grad(full, parameters)
    assert torch.allclose(restricted, full, rtol=1e-5)
    for a, b in zip(restricted_grads, full_grads):  # the same up to float32 summation order
        assert (a - b).norm() <= 1e-4 * b.norm() + 1e-9


def test_click_parsing():
    assert parse_click("5141") == (5141, True) and parse_click("-10795") == (10795, False)
    assert parse_click("n0") == (0, False) and parse_click("p0") == (0, True) and parse_click("-0") == (0, False)
    for bad in ("x", "--3", "5a", "", "pn4"):
        with pytest.raises(InputError):
            parse_click(bad)
    with pytest.raises(InputError, match="has 10 vertices"):
        parse_clicks(["3", "-10"], 10)
    with pytest.raises(InputError, match="no clicks"):
        parse_clicks([], 10)
    assert click_suffix((5141, 10795), (1, -1)) == "v5141_v-10795" and click_suffix((0,), (-1,)) == "vn0"
    many = tuple(range(1000, 1300))
    names = {click_suffix(many, (1,) * 300), click_suffix(many, (1,) * 299 + (-1,)),
             click_suffix(many[:-1], (1,) * 299)}
    assert len(names) == 3 and all(len(name) <= 150 and name.startswith("v1000_v1001_") for name in names)


def test_chunked_head_with_recomputation_gives_the_same_loss_and_gradients(monkeypatch):
    import utils.decoder.training as training

    vertices, faces, _ = two_spheres(subdivisions=2)
    mesh = mesh_from_arrays(vertices, faces)
    attention, head = random_modules(4)
    features = torch.randn(mesh.num_vertices, 256) * 0.3
    masks = torch.rand(2, 40, 40) > 0.5
    batch = Samples(vertices=torch.tensor([[3, 3], [5, 200]]), signs=torch.tensor([[1, 1], [1, -1]], dtype=torch.int8),
                    kind=torch.tensor([0, 2], dtype=torch.int8), view=torch.arange(2),
                    elev=torch.tensor([0.2, -0.5]), azim=torch.tensor([1.0, 3.0]), points=torch.zeros(2, 2, 2),
                    masks=pack_masks(masks), score=torch.ones(2), res=40)
    parameters = list(attention.parameters()) + list(head.parameters())
    whole = batch_loss(attention, head, features, mesh, batch, 2.0)
    whole_grads = torch.autograd.grad(whole, parameters)
    monkeypatch.setattr(training, "HEAD_CHUNK_ROWS", 37)
    chunked = batch_loss(attention, head, features, mesh, batch, 2.0)
    chunked_grads = torch.autograd.grad(chunked, parameters)
    # the head's matrix products run on 37-row chunks instead of all rows: BLAS picks its blocking (and so the order
    # of each dot product's additions) by the matrix shape, which on some CPUs changes the last bit of a row's output
    assert torch.allclose(whole, chunked, rtol=1e-6, atol=0)
    for a, b in zip(whole_grads, chunked_grads):  # weight gradients summed chunk by chunk: float order differs
        assert (a - b).norm() <= 1e-5 * b.norm() + 1e-10


def test_sampled_pixel_loss_is_the_full_loss_on_average_and_exact_when_every_pixel_is_drawn():
    from utils.runtime import keyed_generator

    res = 40
    mesh, attention, head, features, batch = three_view_training_case(5, res)
    with torch.no_grad():
        full = batch_loss(attention, head, features, mesh, batch, 2.0)
        every = batch_loss(attention, head, features, mesh, batch, 2.0, loss_pixels=res * res,
                           generator=keyed_generator(0, "all"))
        draws = torch.stack([batch_loss(attention, head, features, mesh, batch, 2.0, loss_pixels=40,
                                        generator=keyed_generator(0, "draw", k)) for k in range(150)])
        again = batch_loss(attention, head, features, mesh, batch, 2.0, loss_pixels=40,
                           generator=keyed_generator(0, "draw", 0))
        reference = batch_loss(attention, head, features, mesh, batch, 2.0, restricted=False, loss_pixels=40,
                               generator=keyed_generator(0, "draw", 0))
    assert torch.equal(every, full)
    assert torch.equal(again, draws[0]) and draws.std() > 0  # seeded, and the draws differ
    assert torch.allclose(reference, draws[0], rtol=1e-5)  # the drawn pixels' own vertices, as on every vertex
    assert abs(float(draws.mean()) - float(full)) < 3 * float(draws.std()) / 150 ** 0.5 + 1e-3


def test_view_cache_gives_the_fresh_pixel_weights_rasterizes_each_view_once_and_keeps_to_its_budget(monkeypatch):
    import utils.decoder.training as training
    from utils.decoder.training import ViewCache

    mesh, attention, head, features, batch = three_view_training_case(6, 40)
    repeated = batch.select(torch.tensor([0, 1, 0, 2, 1]))  # views 0 and 1 twice in one batch
    fresh = ViewCache(0).pixel_weights(mesh, repeated, 2.0)
    calls = []
    original = training.rasterize
    monkeypatch.setattr(training, "rasterize", lambda *a, **k: calls.append(len(a[1])) or original(*a, **k))
    cache = ViewCache()
    first = cache.pixel_weights(mesh, repeated, 2.0)
    second = cache.pixel_weights(mesh, repeated, 2.0)
    assert calls == [3]  # three distinct views, rasterized together once; the second batch from the cache
    for views in (first, second):
        for a, b in zip(views, fresh):
            assert all(torch.equal(x, y) for x, y in ((a.pixels, b.pixels), (a.vertices, b.vertices),
                                                      (a.corners, b.corners), (a.weights, b.weights)))
    with torch.no_grad():
        assert torch.equal(batch_loss(attention, head, features, mesh, repeated, 2.0, view_cache=cache),
                           batch_loss(attention, head, features, mesh, repeated, 2.0))
    one_view = ViewCache._size(fresh[0])
    small = ViewCache(max_bytes=one_view + 1)  # room for about one view: the least recently used goes
    small.pixel_weights(mesh, repeated, 2.0)
    assert small.bytes <= small.max_bytes and len(small.entries) == 1
    nothing = ViewCache(0)
    nothing.pixel_weights(mesh, repeated, 2.0)
    assert len(nothing.entries) == 0 and nothing.bytes == 0


def test_cosine_learning_rate_warms_up_then_decays_to_zero_and_constant_is_the_original():
    from utils.decoder.schedules import WARMUP_SHARE, learning_rate_factor

    total = 200
    warmup = round(WARMUP_SHARE * total)
    factors = [learning_rate_factor("cosine", step, total) for step in range(total)]
    assert factors[0] == pytest.approx(1 / warmup) and factors[warmup - 1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(factors[warmup:], factors[warmup + 1:]))  # strictly decreasing after warm-up
    assert factors[warmup + (total - warmup) // 2] == pytest.approx(0.5, abs=0.01) and factors[-1] < 1e-3
    assert all(learning_rate_factor("constant", step, total) == 1.0 for step in range(total))
    with pytest.raises(ValueError):
        learning_rate_factor("linear", 0, total)


def test_decoder_settings_round_trip_through_decoder_py_flags():
    from utils.cli import build_decoder_parser, decoder_settings_from_args

    parser = build_decoder_parser("decoder.py")
    assert decoder_settings_from_args(parser.parse_args([])) == DecoderSettings()
    changed = decoder_settings_from_args(parser.parse_args(["--redsidual_attention", "1", "--use_attention_k", "0",
                                                            "--depth", "3"]))
    assert changed == DecoderSettings(depth=3, use_attention_k=False, residual_attention=True)
    assert changed.changed_flags() == ["--depth 3", "--use_attention_k 0", "--redsidual_attention 1"]
    assert changed.changed_arguments() == ["--depth", "3", "--use_attention_k", "0", "--redsidual_attention", "1"]
    assert decoder_settings_from_args(parser.parse_args(changed.changed_arguments())) == changed
    assert DecoderSettings().changed_flags() == []


def test_the_original_s_switches_work_alone_and_with_a_value_in_every_script():
    """--positional_encoding and --show were integers in one of the original's scripts and store_true in another."""
    import data_generation
    import encoder
    from utils.cli import build_decoder_parser

    decoder_parser = build_decoder_parser("decoder.py")
    for parse in (encoder.parse_args, decoder_parser.parse_args):
        assert parse(["--positional_encoding"]).positional_encoding == 1
        assert parse(["--positional_encoding", "0"]).positional_encoding == 0
    assert encoder.parse_args([]).positional_encoding == 1 and decoder_parser.parse_args([]).positional_encoding == 0
    for parse in (data_generation.parse_args, decoder_parser.parse_args):
        assert parse(["--show"]).show == 1 and parse(["--show", "0"]).show == 0 and parse([]).show == 0


@pytest.mark.cuda
def test_on_cuda_the_decoder_gives_the_cpu_s_probabilities():
    """The same modules and features on the GPU: per-vertex probabilities within 1e-5 of the CPU's (float32 on both;
    the kernels add in another order, so not bit for bit)."""
    attention, head = random_modules(2)
    features = torch.randn(20_000, 256)
    cpu = DecoderPredictor(attention, head, features)
    gpu_attention, gpu_head = random_modules(2)  # the same seed: the same weights
    gpu = DecoderPredictor(gpu_attention.cuda(), gpu_head.cuda(), features.cuda())
    for clicks, positive in (([5], [True]), ([5, 900, 15_000], [True, False, True])):
        on_cpu = cpu.predict(torch.tensor(clicks), torch.tensor(positive))
        on_gpu = gpu.predict(torch.tensor(clicks), torch.tensor(positive))
        assert on_gpu.is_cuda
        assert (on_gpu.cpu() - on_cpu).abs().max() <= 1e-5
