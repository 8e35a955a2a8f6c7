"""interactive.py: request checking, exports and the server without a browser; then the whole page in headless
Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium) on the bundled hammer."""
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from models.build_decoder import DecoderSettings, load_decoder
from models.build_feature_field import load_features
from models.decoder_predictor import DecoderPredictor
from utils.app.server import THREE_DIR, make_server
from utils.app.session import Colours, InteractiveSession, RequestError, parse_clicks_request
from utils.decoder.clicks import parse_clicks
from utils.errors import InputError
from utils.geometry.mesh_files import load_mesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESH = os.path.join(ROOT, "meshes", "hammer.obj")
LABELS = os.path.join(ROOT, "meshes", "hammer_labels.npy")
FEATURES = os.path.join(ROOT, "demo", "hammer", "encoder", "pred_f.pth")
CHECKPOINT = os.path.join(ROOT, "demo", "hammer", "decoder", "decoder_checkpoint.pth")
HEAD, HANDLE = 1, 0  # hammer part labels
ARTIFACTS = os.environ.get("ISEG_TEST_ARTIFACTS", os.path.join(ROOT, "test-artifacts"))


@pytest.fixture(scope="module")
def hammer():
    mesh = load_mesh(MESH)
    attention, head = load_decoder(CHECKPOINT, DecoderSettings())
    predictor = DecoderPredictor(attention, head, load_features(FEATURES, mesh))
    face_labels = np.load(LABELS)
    votes = np.zeros((mesh.num_vertices, face_labels.max() + 1))
    np.add.at(votes, (mesh.faces.numpy().ravel(), np.repeat(face_labels, 3)), 1)
    return mesh, predictor, face_labels, votes.argmax(axis=1)  # vertex label = majority of its faces


def make_session(hammer, save_dir, name="hammer"):
    mesh, predictor, _, _ = hammer
    colours = Colours((180, 180, 180), (28, 99, 227), (0, 255, 0), (255, 0, 0))
    return InteractiveSession(mesh, predictor, name, str(save_dir), colours,
                              ["--obj_path", MESH, "--encoder_f_path", FEATURES, "--save_dir", str(save_dir)])


def head_vertex(vertex_labels):
    """The bundled demo's click on the head (demo/hammer/bundled_cases.txt)."""
    vertex = int(open(os.path.join(ROOT, "demo", "hammer", "bundled_cases.txt")).read().split()[0].strip('"'))
    assert vertex_labels[vertex] == HEAD
    return vertex


def test_click_requests_are_checked():
    assert parse_clicks_request({"clicks": [[3, True], [0, False]]}, 10) == ([3, 0], [True, False])
    bad = [None, [], {"click": []}, {"clicks": []}, {"clicks": [[10, True]]}, {"clicks": [[-1, True]]},
           {"clicks": [[True, True]]}, {"clicks": [[1.5, True]]}, {"clicks": [[1, 1]]}, {"clicks": [[1]]},
           {"clicks": "1"}, {"clicks": [[1, True]] * 1000}]
    for body in bad:
        with pytest.raises(RequestError):
            parse_clicks_request(body, 10)


def test_export_writes_the_segment_its_probabilities_replayable_clicks_and_merged_labels(hammer, tmp_path):
    mesh, predictor, face_labels, vertex_labels = hammer
    session = make_session(hammer, tmp_path)
    head = head_vertex(vertex_labels)
    handle = int(np.argmin(np.abs(mesh.vertices[:, 1].numpy() - mesh.vertices[vertex_labels == HANDLE, 1].min().item())
                           + 10 * (vertex_labels != HANDLE)))  # the handle's lowest vertex
    first = session.export([head], [True], segment=1)
    paths = first["paths"]
    probability = np.load(paths["probability"])
    expected = predictor.predict(torch.tensor([head]), torch.tensor([True])).numpy()
    assert probability.shape == (mesh.num_vertices,) and np.array_equal(probability, expected)
    selected = probability[mesh.faces.numpy()].mean(axis=1) > 0.5
    import trimesh

    submesh = trimesh.load(paths["mesh"], process=False)
    assert len(submesh.faces) == selected.sum() == first["selected_faces"]
    original = mesh.original_vertices().numpy()
    assert np.allclose(submesh.bounds, [original[mesh.faces.numpy()[selected]].reshape(-1, 3).min(0),
                                        original[mesh.faces.numpy()[selected]].reshape(-1, 3).max(0)], atol=1e-4)
    clicks = json.loads(open(paths["clicks"]).read())
    vertices, positive = parse_clicks(clicks["select_vertices"], mesh.num_vertices)  # as decoder.py reads them
    assert vertices.tolist() == [head] and positive.tolist() == [True] and "--select_vertices" in clicks["replay"]
    # a second segment goes into the same label file; the first keeps its faces
    session.export([handle], [True], segment=2, file_format="obj")
    labels = np.load(paths["labels"])
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels == 1).sum() > 0 and (labels == 2).sum() > 0
    assert np.mean(face_labels[labels == 1] == HEAD) > 0.9 and np.mean(face_labels[labels == 2] == HANDLE) > 0.9
    seg = [int(line) for line in open(paths["labels"][:-4] + ".seg")]
    assert seg == labels.tolist()
    assert open(os.path.join(tmp_path, "exports", "hammer_segment2.obj")).read().count("\nf ") > 0
    # exporting segment 1 again replaces it
    session.export([handle], [True], segment=1)
    assert (np.load(paths["labels"]) == 2).sum() == 0


def post(url, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def server(hammer, tmp_path):
    server = make_server(make_session(hammer, tmp_path), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_server_answers_bad_requests_with_400_and_stays_up(server, hammer):
    _, _, _, vertex_labels = hammer
    assert server.startswith("http://127.0.0.1:")  # loopback by default
    for body in ({"clicks": []}, {"clicks": [[10**6, True]]}, {"nonsense": 1}):
        status, payload = post(server + "/api/predict", body)
        assert status == 400 and "\n" not in payload["error"]
    status, payload = post(server + "/api/export", {"clicks": [[0, True]], "segment": 0})
    assert status == 400
    status, payload = post(server + "/api/predict", {"clicks": [[head_vertex(vertex_labels), True]]})
    assert status == 200 and len(payload["probability"]) == len(vertex_labels)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(server + "/vendor/../../interactive.py", timeout=10)


def raw_request(server, text: bytes, read_timeout: float = 10.0) -> bytes:
    """Send bytes as they are (headers a browser or an attacker's page would send) and read the whole reply."""
    import socket

    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as connection:
        connection.sendall(text)
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


def request_text(method: str, path: str, host: str, body: bytes = b"", **headers) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_only_this_machine_s_pages_may_use_the_server(server, hammer, tmp_path):
    _, _, _, vertex_labels = hammer
    here = server.split("//", 1)[1]
    clicks = json.dumps({"clicks": [[head_vertex(vertex_labels), True]], "segment": 1}).encode()
    ok = raw_request(server, request_text("GET", "/api/mesh", here))
    assert ok.startswith(b"HTTP/1.0 200") or ok.startswith(b"HTTP/1.1 200")
    # a DNS-rebinding page: the browser sends the attacker's name as Host
    rebound = raw_request(server, request_text("GET", "/api/mesh", "evil.example:" + here.split(":")[1]))
    assert b" 403 " in rebound.split(b"\r\n", 1)[0] and b"vertices" not in rebound
    # a cross-site page: a form post (no JSON type) and a fetch with a foreign Origin, both refused, nothing written
    form = raw_request(server, request_text("POST", "/api/export", here, clicks, Content_Type="text/plain"))
    assert b" 415 " in form.split(b"\r\n", 1)[0]
    foreign = raw_request(server, request_text("POST", "/api/export", here, clicks, Content_Type="application/json",
                                               Origin="http://evil.example"))
    assert b" 403 " in foreign.split(b"\r\n", 1)[0]
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").iterdir())
    same = raw_request(server, request_text("POST", "/api/predict", here, clicks, Content_Type="application/json",
                                            Origin=server))
    assert b" 200 " in same.split(b"\r\n", 1)[0]  # the page itself (same origin) is served
    # a body shorter than its Content-Length, and a body that is not an object: each gets a reply, not a reset
    short = request_text("POST", "/api/predict", here, b"{", Content_Type="application/json").replace(
        b"Content-Length: 1", b"Content-Length: 50")
    assert b" 400 " in raw_request(server, short).split(b"\r\n", 1)[0]
    listed = raw_request(server, request_text("POST", "/api/predict", here, b"[1, 2]", Content_Type="application/json"))
    assert listed.split(b"\r\n", 1)[0].split()[1] in (b"400", b"500")


def test_server_settings_and_export_names_are_confined(hammer, tmp_path):
    import utils.app.server as app_server

    server = make_server(make_session(hammer, tmp_path), "127.0.0.1", 0)
    try:
        assert server.request_queue_size >= 64 and server.RequestHandlerClass.timeout == app_server.SOCKET_TIMEOUT
    finally:
        server.server_close()
    for name in ("../x", "a/b", "..", ""):
        with pytest.raises(InputError, match="plain name"):
            make_session(hammer, tmp_path, name=name)


def browser_available():
    return (shutil.which("chromium") and shutil.which("chromedriver")
            and os.path.isfile(os.path.join(THREE_DIR, "build", "three.module.js")))


@pytest.mark.skipif(not browser_available(), reason="needs Debian's chromium and chromium-driver (.ci/run installs "
                                                    "them) and three.js in web/node_modules (install_environment.sh)")
def test_the_page_in_headless_chromium_segments_the_head_undoes_and_exports(server, hammer, tmp_path):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    mesh, predictor, face_labels, vertex_labels = hammer
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                     "--enable-unsafe-swiftshader", "--window-size=1100,750"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    body = lambda: driver.find_element(By.TAG_NAME, "body")  # noqa: E731

    def wait_until(condition, what, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; page says: {driver.find_element(By.ID, 'message').text}")

    def answered_after(count):
        return lambda: int(body().get_attribute("data-predictions") or 0) > count and \
            body().get_attribute("data-status") == "ready"

    try:
        driver.get(server + "/")
        wait_until(lambda: body().get_attribute("data-status") == "ready", "the mesh to load")
        # a point on the screen where the head is: the projection of a head vertex that a ray pick confirms
        canvas = driver.find_element(By.TAG_NAME, "canvas")
        rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", canvas)
        point = None
        head_vertices = np.nonzero(vertex_labels == HEAD)[0]
        centre = mesh.vertices[head_vertices].mean(dim=0)
        for vertex in head_vertices[np.argsort((mesh.vertices[head_vertices] - centre).norm(dim=1).numpy())][:200:5]:
            spot = driver.execute_script(f"return window.iseg.projectVertex({int(vertex)})")
            picked = driver.execute_script(f"return window.iseg.pickVertex({spot['x']}, {spot['y']})")
            if picked is not None and vertex_labels[picked] == HEAD:
                point = spot
                break
        assert point is not None, "no head vertex is visible from the default view"
        count = int(body().get_attribute("data-predictions"))
        ActionChains(driver).move_to_element_with_offset(
            canvas, int(point["x"] - rect["left"] - rect["width"] / 2),
            int(point["y"] - rect["top"] - rect["height"] / 2)).click().perform()
        wait_until(answered_after(count), "the decoder's answer")
        clicks = driver.execute_script("return window.iseg.state.clicks")
        assert len(clicks) == 1 and clicks[0][1] is True and vertex_labels[clicks[0][0]] == HEAD
        probability = np.array(driver.execute_script("return Array.from(window.iseg.state.probability)"))
        segmented, head = probability > 0.5, vertex_labels == HEAD
        iou = (segmented & head).sum() / (segmented | head).sum()
        assert iou >= 0.8, f"IoU with the head {iou:.3f}"
        assert "ms" in driver.find_element(By.ID, "latency").text
        os.makedirs(ARTIFACTS, exist_ok=True)
        screenshot = os.path.join(ARTIFACTS, "interactive_hammer_head.png")
        driver.save_screenshot(screenshot)
        assert os.path.getsize(screenshot) > 10_000

        count = int(body().get_attribute("data-predictions"))
        driver.find_element(By.ID, "undo").click()
        wait_until(answered_after(count), "undo")
        assert driver.execute_script("return window.iseg.state.clicks.length") == 0
        assert driver.execute_script("return window.iseg.state.probability") is None
        count = int(body().get_attribute("data-predictions"))
        driver.find_element(By.ID, "redo").click()
        wait_until(answered_after(count), "redo")
        assert driver.execute_script("return window.iseg.state.clicks") == clicks

        driver.find_element(By.ID, "export").click()
        wait_until(lambda: body().get_attribute("data-exported") == "1", "the export")
        exports = tmp_path / "exports"
        labels = np.load(exports / "hammer_labels.npy")
        assert labels.shape == (mesh.num_faces,)
        face_iou = ((labels == 1) & (face_labels == HEAD)).sum() / ((labels == 1) | (face_labels == HEAD)).sum()
        assert face_iou >= 0.8
        assert np.allclose(np.load(exports / "hammer_segment1_probability.npy"), probability, atol=6e-5)
        assert json.loads((exports / "hammer_segment1_clicks.json").read_text())["clicks"][0]["vertex"] == clicks[0][0]
        assert (exports / "hammer_segment1.ply").stat().st_size > 0

        # the click-aware switch asks again, and its answer is the click-aware decoder's
        count = int(body().get_attribute("data-predictions"))
        driver.find_element(By.ID, "click-aware").click()
        wait_until(answered_after(count), "the click-aware answer")
        aware = np.array(driver.execute_script("return Array.from(window.iseg.state.probability)"))
        from models.click_aware import ClickAwarePredictor

        expected = ClickAwarePredictor.for_mesh(predictor, mesh).predict(torch.tensor([clicks[0][0]]),
                                                                         torch.tensor([True])).numpy()
        assert np.allclose(aware, expected, atol=6e-5) and not np.allclose(aware, probability, atol=6e-5)
    finally:
        driver.quit()


@pytest.mark.parametrize("arguments, message", [
    (["--obj_path", "missing.obj"], "error: mesh file not found: missing.obj"),
    (["--port", "70000"], "error: --port must be in 0..65535"),
    (["--depth", "3"], "error: decoder checkpoint"),
])
def test_interactive_cli_reports_bad_input_in_one_line(arguments, message):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "interactive.py", *arguments], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(message)


def test_the_exported_replay_command_gives_the_session_s_probabilities_for_any_decoder_settings(tmp_path):
    """A decoder with other architecture flags than the original's defaults (as train.py --budget quick trains): the
    replay command of an export must carry them, or decoder.py would build another network."""
    import shlex

    import trimesh

    import decoder
    import interactive
    from utils.geometry.shapes import two_boxes

    vertices, faces, _ = two_boxes(subdivisions=1)
    trimesh.Trimesh(vertices, faces, process=False).export(tmp_path / "boxes.off")
    torch.manual_seed(0)
    settings = DecoderSettings(depth=3, use_attention_q=False, use_attention_k=False, residual_attention=True)
    attention, head = settings.build()
    save_dir = tmp_path / "decoder"
    save_dir.mkdir()
    torch.save({"attention_state_dict": attention.state_dict(), "model_state_dict": head.state_dict()},
               save_dir / "decoder_checkpoint.pth")
    torch.save(torch.randn(len(vertices), 256) * 0.3, tmp_path / "pred_f.pth")
    args = interactive.parse_args(["--obj_path", str(tmp_path / "boxes.off"), "--encoder_f_path",
                                   str(tmp_path / "pred_f.pth"), "--save_dir", str(save_dir), "--device", "cpu",
                                   *settings.changed_arguments()])
    session = interactive.build_session(args)
    exported = session.export([3, 40], [True, False], segment=1)
    record = json.load(open(exported["paths"]["clicks"]))
    replay = shlex.split(record["replay"])
    assert replay[:2] == ["python", "decoder.py"] and "--redsidual_attention" in replay
    decoder.main(replay[2:] + ["--device", "cpu"])
    replayed = np.load(save_dir / "vertex_probability_v3_v-40.npy")
    assert np.array_equal(replayed, np.load(exported["paths"]["probability"]))  # the same network on the same inputs
    attention_flags = {"--use_attention_q", "--use_attention_k", "--redsidual_attention"}
    plain = [token for k, token in enumerate(replay[2:]) if token not in attention_flags
             and replay[2:][k - 1] not in attention_flags]
    decoder.main(plain + ["--device", "cpu"])  # without the flags: another network (the bug this guards against)
    assert not np.array_equal(np.load(save_dir / "vertex_probability_v3_v-40.npy"), replayed)
    # the click-aware switch: its export replays with --click_aware 1 to the same values
    exported = session.export([3, 40], [True, False], segment=2, click_aware=True)
    record = json.load(open(exported["paths"]["clicks"]))
    replay = shlex.split(record["replay"])
    assert record["click_aware"] is True and replay[replay.index("--click_aware") + 1] == "1"
    decoder.main(replay[2:] + ["--device", "cpu"])
    replayed = np.load(save_dir / "vertex_probability_v3_v-40_click_aware.npy")
    assert np.array_equal(replayed, np.load(exported["paths"]["probability"]))


def test_the_click_aware_switch_answers_with_the_click_aware_decoder(hammer, tmp_path):
    """The bundled demo's third case (positive on the head, negative on the claw) keeps the head and leaves the claw
    out with either decoder; the page's switch picks the click-aware one and a bad switch value is a 400."""
    from models.click_aware import ClickAwarePredictor

    mesh, predictor, face_labels, vertex_labels = hammer
    session = make_session(hammer, tmp_path)
    head, claw = [int(token.strip('"')) for token in
                  open(os.path.join(ROOT, "demo", "hammer", "bundled_cases.txt")).read().splitlines()[2].split()]
    claw = -claw
    assert vertex_labels[head] == HEAD and vertex_labels[claw] == 3
    body = {"clicks": [[head, True], [claw, False]]}
    plain = session.predict_request(body)
    aware = session.predict_request({**body, "click_aware": True})
    assert plain["click_aware"] is False and aware["click_aware"] is True
    expected = ClickAwarePredictor.for_mesh(predictor, mesh).predict(torch.tensor([head, claw]),
                                                                     torch.tensor([True, False])).numpy()
    assert np.allclose(aware["probability"], expected, atol=5e-5)  # rounded to 4 decimals in the reply
    faces = mesh.faces.numpy()
    for answer in (plain, aware):
        selected = np.asarray(answer["probability"])[faces].mean(axis=1) > 0.5
        assert np.mean(selected[face_labels == HEAD]) > 0.9 and np.mean(selected[face_labels == 3]) < 0.1
    with pytest.raises(RequestError):
        session.predict_request({**body, "click_aware": 1})
    on = InteractiveSession(mesh, predictor, "hammer", str(tmp_path), session.colours, [], click_aware=True)
    assert on.mesh_payload()["click_aware"] is True and on.predict_request(body)["click_aware"] is True
