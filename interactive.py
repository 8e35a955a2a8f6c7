"""Interactive segmentation in the browser: click on the mesh, see the segment, export it (the original's
interactive.py, same flags, with a web page instead of a polyscope window).

    python interactive.py                          # the bundled hammer demo; then open http://127.0.0.1:8000
    python interactive.py --obj_path my.obj --encoder_f_path experiments/my/encoder/pred_f.pth \\
        --save_dir experiments/my/decoder/ --port 8080

The mesh, its features and the decoder are loaded once; every click is answered by the decoder, or with the page's
click-aware switch on (at start with --click_aware 1) by the click-aware decoder (see
utils/app/server.py for the API, utils/app/session.py for the exports). The server listens on
127.0.0.1 unless --host says otherwise; on a remote machine, forward the port (ssh -L 8000:127.0.0.1:8000 host).
Flags of decoder.py that only matter for training or test outputs are accepted and have no effect here.
"""
import os

from utils.errors import run_cli


def parse_args(argv=None):
    from utils.cli import build_decoder_parser
    from utils.paths import RepoDefault, resolve_repo_defaults

    parser = build_decoder_parser(__doc__, interactive=True)
    parser.set_defaults(encoder_f_path=RepoDefault("./demo/hammer/encoder/pred_f.pth"),
                        save_dir=RepoDefault("./demo/hammer/decoder/"), seg_color=[28, 99, 227])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")

    return resolve_repo_defaults(parser.parse_args(argv))


def build_session(args):
    """Load mesh, features and decoder once → InteractiveSession (InputError on any bad input)."""
    from models.build_decoder import load_predictor
    from models.build_feature_field import load_features
    from utils.app.session import Colours, InteractiveSession
    from utils.cli import decoder_settings_from_args
    from utils.geometry.mesh_files import load_mesh
    from utils.runtime import resolve_device

    device = resolve_device(args.device)
    mesh = load_mesh(args.obj_path)
    features = load_features(args.encoder_f_path, mesh)
    settings = decoder_settings_from_args(args)
    predictor = load_predictor(os.path.join(args.save_dir, args.model_name), features, settings, device)
    colours = Colours(*(tuple(int(c) for c in colour) for colour in
                        (args.base_color, args.seg_color, args.pos_color, args.neg_color)))
    # the decoder.py command that gives the same probabilities: the same files and the same architecture flags
    replay = ["--obj_path", args.obj_path, "--encoder_f_path", args.encoder_f_path, "--save_dir", args.save_dir,
              "--model_name", args.model_name, *settings.changed_arguments()]
    return InteractiveSession(mesh, predictor, args.name, args.save_dir, colours, replay, bool(args.click_aware))

def main(argv=None) -> None:
    args = parse_args(argv)
    from utils.app.server import check_web_assets, make_server
    from utils.errors import InputError

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {args.port}")
    check_web_assets()
    session = build_session(args)
    server = make_server(session, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"iSeg interactive: {session.mesh.num_vertices} vertices; open http://{host}:{port}/ "
          f"(click: positive, shift-click: negative; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    run_cli(main)
