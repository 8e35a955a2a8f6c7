"""The SAM family beyond segment-anything as teachers. SAM 2 (transformers): for SAM 2.1 (a narrow Hiera of the
released classes) and EdgeTAM (the released architecture), random weights saved in the Hugging Face format are found
under SAM_repo/model_checkpoints/ and loaded through the real path; the render reaches the model upright and in RGB,
a click reaches the prompt encoder at its pixel in the 1024 frame, masks come back indexed like the view. HQ-SAM
(segment-anything-hq): the light vit_tiny release's architecture, saved as its release is, found and loaded (its
image, click and mask guards run with segment-anything's in test_teachers.py). And the whole pipeline runs on each."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from teacher_checks import assert_upright_rgb, blank_view, corner_view

import data_generation
import decoder
import encoder
from models.build_teacher import build_sam_teacher
from models.sam2_teacher import SAM2_RELEASES, Sam2Teacher, default_processor, load_sam2, model_class, released_config
from models.sam_hq_teacher import SAM_HQ_FILES, SAM_HQ_SOURCE, build_sam_hq
from utils.errors import InputError
from utils.geometry.shapes import save_shape, two_boxes

NARROW_HIERA = dict(hidden_size=8, blocks_per_stage=[1, 1, 2, 1], global_attention_blocks=[3])  # same classes
FAMILIES = ["sam2.1_hiera_tiny", "edgetam"]
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A stand-in repository root whose SAM_repo/model_checkpoints/ holds each family's release (random weights)."""
    root = tmp_path_factory.mktemp("repository")
    torch.manual_seed(0)
    (root / "SAM_repo" / "model_checkpoints").mkdir(parents=True)
    torch.save(build_sam_hq("sam_hq_vit_tiny").state_dict(),
               root / "SAM_repo" / "model_checkpoints" / SAM_HQ_FILES["sam_hq_vit_tiny"])
    for name in FAMILIES:
        torch.manual_seed(0)
        overrides = NARROW_HIERA if name.startswith("sam2") else {}
        model = model_class(SAM2_RELEASES[name].family)(released_config(name, **overrides))
        folder = root / "SAM_repo" / "model_checkpoints" / SAM2_RELEASES[name].folder
        model.save_pretrained(folder)
        default_processor().save_pretrained(folder)
    return root


@pytest.fixture(scope="module", params=FAMILIES)
def teacher(request, released):
    folder = released / "SAM_repo" / "model_checkpoints" / SAM2_RELEASES[request.param].folder
    return Sam2Teacher.build(request.param, str(folder))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_release_is_found_under_its_name_and_loaded_with_its_weights(name, released, monkeypatch):
    monkeypatch.setattr("utils.paths.REPO_ROOT", str(released))
    monkeypatch.chdir(released / "SAM_repo")  # the working directory does not matter
    teacher = build_sam_teacher(name)
    assert name in teacher.description
    folder = released / "SAM_repo" / "model_checkpoints" / SAM2_RELEASES[name].folder
    from safetensors.torch import load_file

    saved = load_file(str(folder / "model.safetensors"))
    loaded = load_sam2(name, str(folder))[0].state_dict()  # what the teacher was built from, before inference_form
    assert saved and all(torch.equal(loaded[key], value) for key, value in saved.items() if key in loaded)


@pytest.mark.parametrize("name", FAMILIES)
def test_the_teacher_s_inference_form_answers_as_the_release(name, released):
    """Kept position embeddings change nothing; EdgeTAM's folded RepViT branches and batch norms and channels-last
    memory change only the rounding."""
    folder = str(released / "SAM_repo" / "model_checkpoints" / SAM2_RELEASES[name].folder)
    release, processor, _ = load_sam2(name, folder)
    for module in release.modules():  # batch norms with statistics, so that folding them is not a no-op
        if isinstance(module, torch.nn.BatchNorm2d):
            generator = torch.Generator().manual_seed(module.num_features)
            module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(module.num_features, generator=generator))
    views = [corner_view(), blank_view()]
    with torch.no_grad():
        expected = [release.get_image_embeddings(processor(images=view.image.numpy(), return_tensors="pt")[
            "pixel_values"]) for view in views]
    teacher = Sam2Teacher(release, processor, name)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in teacher.model.vision_encoder.modules())
    for view, maps in zip(views, expected):  # the second view is encoded with the first view's position embeddings
        encoded = teacher.encode(view)
        for got, want in zip((*encoded.extra["high_resolution"], encoded.embedding), maps):
            assert got.is_contiguous()
            if name == "edgetam":  # float32 sums in another order: ~1e-6 of the largest entry, not every bit
                assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max()), rtol=0)
            else:
                assert torch.equal(got, want)


def test_the_light_hq_sam_release_is_found_under_its_name_and_loaded(released, monkeypatch):
    monkeypatch.setattr("utils.paths.REPO_ROOT", str(released))
    monkeypatch.chdir(released / "SAM_repo")
    teacher = build_sam_teacher("sam_hq_vit_tiny")
    assert "sam_hq_vit_tiny.pth" in teacher.description
    saved = torch.load(released / "SAM_repo" / "model_checkpoints" / "sam_hq_vit_tiny.pth", weights_only=True)
    loaded = teacher.predictor.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in saved.items())
    monkeypatch.setattr("utils.paths.REPO_ROOT", str(released / "elsewhere"))
    with pytest.raises(InputError) as error:
        build_sam_teacher("sam_hq_vit_b")
    assert os.path.join("SAM_repo", "model_checkpoints", "sam_hq_vit_b.pth") in str(error.value)
    assert SAM_HQ_SOURCE + "sam_hq_vit_b.pth" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(InputError, match="does not fit sam_hq_vit_b"):
        build_sam_teacher("sam_hq_vit_b", str(released / "SAM_repo" / "model_checkpoints" / "sam_hq_vit_tiny.pth"))


def test_missing_or_unsafe_releases_are_one_line_errors(tmp_path, released, monkeypatch):
    monkeypatch.setattr("utils.paths.REPO_ROOT", str(tmp_path))
    with pytest.raises(InputError) as error:
        build_sam_teacher("sam2.1_hiera_small")
    message = str(error.value)
    assert os.path.join("SAM_repo", "model_checkpoints", "sam2.1-hiera-small") in message
    assert "https://huggingface.co/facebook/sam2.1-hiera-small" in message and "\n" not in message
    source = released / "SAM_repo" / "model_checkpoints" / "EdgeTAM-hf"
    unsafe = tmp_path / "unsafe"
    shutil.copytree(source, unsafe)
    torch.save({}, unsafe / "pytorch_model.bin")
    os.remove(unsafe / "model.safetensors")
    with pytest.raises(InputError, match="no .safetensors weights"):
        load_sam2("edgetam", str(unsafe))
    with pytest.raises(InputError, match="holds a 'edgetam' model, not 'sam2'"):
        load_sam2("sam2.1_hiera_large", str(source))
    damaged = tmp_path / "damaged"
    shutil.copytree(source, damaged)
    (damaged / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="could not load edgetam") as error:
        load_sam2("edgetam", str(damaged))
    assert "\n" not in str(error.value)


def test_the_render_reaches_the_model_upright_in_rgb(teacher):
    view = corner_view()
    seen = {}
    hook = teacher.model.vision_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(x=(args[0] if args else kwargs["pixel_values"]).clone()),
        with_kwargs=True)
    try:
        encoded = teacher.encode(view)
    finally:
        hook.remove()
    assert encoded.embedding.shape == (1, 256, 64, 64)
    assert [tuple(m.shape) for m in encoded.extra["high_resolution"]] == [(1, 32, 256, 256), (1, 64, 128, 128)]
    # (3, 1024, 1024) back to 0-255; 1.5: the processor's own bilinear resize rounds a little differently from SAM's
    assert_upright_rgb((seen["x"][0] * IMAGENET_STD + IMAGENET_MEAN) * 255, tolerance=1.5)


def test_a_click_reaches_the_prompt_encoder_at_its_pixel_in_the_1024_frame(teacher):
    encoded = teacher.encode(blank_view())
    seen = {}
    hook = teacher.model.prompt_encoder.register_forward_hook(lambda module, args, kwargs, out: seen.update(kwargs),
                                                              with_kwargs=True)
    try:
        teacher.predict(encoded, torch.tensor([[[30.0, 100.0], [200.0, 12.0]]]), torch.tensor([[1, 0]]))
    finally:
        hook.remove()
    expected = torch.tensor([[30.0, 100.0], [200.0, 12.0]]) * (1024 / 224)  # x = column, y = row
    assert torch.allclose(seen["input_points"][0, 0].cpu(), expected, rtol=1e-5)
    assert seen["input_labels"][0, 0].tolist() == [1, 0]


def test_masks_come_back_indexed_like_the_view(teacher, monkeypatch):
    """A mask the model puts in the top-right quarter of its frame is the view's top-right quarter."""
    encoded = teacher.encode(blank_view())

    def top_right_logits(*args, **kwargs):
        batch = kwargs["sparse_prompt_embeddings"].shape[0]
        logits = torch.full((batch, 1, 3, 256, 256), -10.0)
        logits[..., :128, 128:] = 10.0
        return logits, torch.full((batch, 1, 3), 0.5), None, torch.zeros(batch, 1, 1)

    monkeypatch.setattr(teacher.model.mask_decoder, "forward", top_right_logits)
    prediction = teacher.predict(encoded, torch.tensor([[[100.0, 100.0]]]), torch.tensor([[1]]))
    mask = prediction.masks[0, 0]
    assert mask.shape == (224, 224)
    assert mask[:100, 124:].all() and not mask[124:, :].any() and not mask[:, :100].any()
    assert prediction.low_res_logits.shape == (1, 3, 256, 256) and prediction.scores.tolist() == [[0.5] * 3]


def test_prompts_are_batched_and_take_a_mask_input_each(teacher):
    encoded = teacher.encode(blank_view())
    points = torch.tensor([[[10.0, 10.0], [50.0, 60.0]]] * 4)
    labels = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 0]])
    first = teacher.predict(encoded, points, labels)
    assert first.masks.shape == (4, 3, 224, 224) and first.masks.dtype == torch.bool
    assert first.scores.shape == (4, 3)
    assert torch.equal(first.masks[0], first.masks[2])  # the same prompt gives the same answer in a batch
    inputs = first.low_res_logits[:, :1].clone()
    inputs[2] = -inputs[2]  # prompt 2 refined from another mask than prompt 0
    again = teacher.predict(encoded, points, labels, mask_input=inputs)
    assert again.masks.shape == (4, 3, 224, 224)
    assert not torch.equal(again.low_res_logits[0], again.low_res_logits[2])  # each prompt's own mask input


@pytest.mark.parametrize("name", FAMILIES + ["sam_hq_vit_tiny"])
def test_the_pipeline_runs_on_the_family(name, released, tmp_path):
    """encoder.py → data_generation.py → decoder.py with --SAM <name> on two boxes (a tiny budget)."""
    mesh_path, _ = save_shape(two_boxes(subdivisions=1), tmp_path, "boxes")
    folder = str(released / "SAM_repo" / "model_checkpoints" / (SAM_HQ_FILES.get(name) or SAM2_RELEASES[name].folder))
    common = ["--obj_path", mesh_path, "--device", "cpu", "--SAM", name, "--sam_checkpoint", folder]
    encoder.main(common + ["--encoder_data_dir", str(tmp_path / "ed"), "--encoder_model_dir", str(tmp_path / "em"),
                           "--generate_random_views", "1", "--n_views", "3", "--start_training", "1", "--num_epochs",
                           "1", "--test", "1", "--network_verbose", "0"])
    manifest = json.loads((tmp_path / "ed" / "manifest.json").read_text())
    assert manifest["teacher"].startswith(name)
    data_generation.main(common + ["--decoder_data_dir", str(tmp_path / "dd"), "--percentage", "0.1", "--n_views",
                                   "1", "--view_pool", "3", "--second_positive", "1"])
    features = str(tmp_path / "em" / "pred_f.pth")
    dec = ["--obj_path", mesh_path, "--device", "cpu", "--encoder_f_path", features, "--save_dir",
           str(tmp_path / "dec"), "--depth", "2"]
    decoder.main(dec + ["--mode", "train", "--decoder_data_dir", str(tmp_path / "dd"), "--num_epochs", "1",
                        "--batch_size", "4", "--use_positive_click", "1"])
    decoder.main(dec + ["--mode", "test", "--select_vertices", "3"])
    probability = np.load(tmp_path / "dec" / "vertex_probability_v3.npy")
    assert probability.shape == (len(two_boxes(subdivisions=1)[0]),) and np.isfinite(probability).all()


@pytest.mark.cuda
def test_on_cuda_the_teacher_gives_the_cpu_s_answers(teacher):
    view = blank_view()
    view.image[40:180, 60:160] = torch.tensor([90, 90, 90], dtype=torch.uint8)
    points, labels = torch.tensor([[[100.0, 100.0]]]), torch.tensor([[1]])
    cpu = teacher.predict(teacher.encode(view), points, labels)
    cuda = Sam2Teacher(teacher.model, teacher.processor, teacher.description, torch.device("cuda"))
    answer = cuda.predict(cuda.encode(view), points, labels)
    teacher.model.to("cpu")
    # TF32 and other kernels on the GPU: logits agree to a tolerance, not in every bit
    assert torch.allclose(answer.low_res_logits, cpu.low_res_logits, atol=1e-2, rtol=1e-2)
