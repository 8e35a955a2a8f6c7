"""train.py: the stage commands it runs are the original's training sequence and parse as each stage's flags."""
import data_generation
import decoder
import encoder
import train


def test_stage_commands_are_the_training_sequence_with_the_chosen_budget_and_options(tmp_path):
    args = train.parse_args(["--obj_path", "meshes/hammer.obj", "--budget", "quick", "--teacher", "label",
                             "--labels", "meshes/hammer_labels.npy", "--data_root", str(tmp_path / "data"),
                             "--experiments_root", str(tmp_path / "experiments"), "--positive_inside", "1"])
    commands, features, decoder_dir = train.stage_commands(args)
    assert [c[1].rsplit("/", 1)[-1] for c in commands] == ["encoder.py", "encoder.py", "data_generation.py",
                                                         "decoder.py"]
    views, training = (encoder.parse_args(c[2:]) for c in commands[:2])
    assert views.generate_random_views == 1 and views.start_training == 0 and views.n_views == 300
    assert training.start_training == 1 and training.num_epochs == 3
    data = data_generation.parse_args(commands[2][2:])
    assert data.positive_inside == 1 and data.negative_outside == 0 and data.teacher == "label"
    assert (data.percentage, data.n_views, data.view_pool) == (0.03, 20, 300)
    trained = decoder.build_parser().parse_args(commands[3][2:])
    assert trained.mode == "train" and trained.encoder_f_path == features and trained.save_dir == decoder_dir
    assert trained.num_epochs == 2 and trained.data_percentage == 0.2
    default = data_generation.parse_args(train.stage_commands(train.parse_args(["--obj_path", "m.obj"]))[0][2][2:])
    assert default.positive_inside == 0 and default.negative_outside == 0 and default.n_views == 100  # the original
