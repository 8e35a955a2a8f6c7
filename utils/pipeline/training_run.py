"""train.py over one mesh or many: which meshes (files, folders, globs) and their labels, each mesh's stages (the stage
runner, utils/pipeline/runner.py) in this process or as Ray tasks (utils/pipeline/cluster.py), and the summary.

A mesh's folders are ``<data_root>/<name>/`` (stage data) and ``<experiments_root>/<name>/`` (features, decoder), its
name the file's name without extension; every stage resumes from what is on disk, so rerunning a command that was
interrupted — or whose driver or workers were killed — continues where each mesh stood. A mesh that cannot be trained
(a bad file, labels that do not fit) is reported with its one-line error, and the others go on.
"""
from __future__ import annotations

import glob
import os
import shlex
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from tqdm import tqdm

from utils.errors import InputError, describe_os_error, require_writable_folder
from utils.geometry.mesh_files import MESH_FORMATS
from utils.io import save_json
from utils.pipeline.budgets import Budget
from utils.pipeline.cluster import ClusterSettings, file_sizes, run_tasks
from utils.pipeline.runner import MeshWorkspace, train_mesh

LABEL_FORMATS = (".seg", ".npy")  # looked for, in this order, as <labels folder>/<mesh name><extension>
SUMMARY_FILE = "train_summary.json"  # in the experiments root, after a run over more than one mesh


@dataclass(frozen=True)
class MeshJob:
    """One mesh to train: its file, its name (the folders' name) and its per-face labels (label teacher; else None)."""

    obj_path: str
    name: str
    labels: Optional[str] = None


@dataclass(frozen=True)
class TrainRunSettings:
    """What every mesh of a train.py run is trained with: the resolved ``budget``, the roots of the stage data and
    of the results, the seed, the teacher (``label``, or ``sam`` with ``sam_type`` / ``sam_checkpoint``; the label
    teacher's ``imperfect_masks`` mode), the device name, and whether the printed commands use the click-aware
    decoder."""

    budget: Budget
    data_root: str
    experiments_root: str
    seed: int = 0
    teacher: str = "sam"
    sam_type: str = "vit_h"
    sam_checkpoint: Optional[str] = None
    imperfect_masks: bool = False
    device: str = "auto"
    click_aware: bool = False


def expand_mesh_paths(values: Sequence[str]) -> List[str]:
    """``--obj_path`` values → mesh files, in the order given: a file as it is, a folder's mesh files (by name), a
    glob pattern's matches (by name; ``**`` descends into folders). A file given twice is trained once.

    Raises:
        InputError: a value that is no file, no folder and matches nothing; a folder or pattern without meshes.
    """
    paths: List[str] = []
    for value in values:
        if os.path.isfile(value):
            found = [value]
        elif os.path.isdir(value):
            found = sorted(os.path.join(value, name) for name in os.listdir(value)
                           if os.path.splitext(name)[1].lower() in MESH_FORMATS
                           and os.path.isfile(os.path.join(value, name)))
            if not found:
                raise InputError(f"--obj_path {value}: the folder holds no mesh ({', '.join(MESH_FORMATS)})")
        else:
            found = sorted(path for path in glob.glob(value, recursive=True)
                           if os.path.isfile(path) and os.path.splitext(path)[1].lower() in MESH_FORMATS)
            if not found:
                raise InputError(f"--obj_path {value}: no such file, and no mesh ({', '.join(MESH_FORMATS)}) matches "
                                 f"it as a pattern")
        paths.extend(found)
    seen, unique = set(), []
    for path in paths:  # the first spelling of each file
        if os.path.abspath(path) not in seen:
            seen.add(os.path.abspath(path))
            unique.append(path)
    return unique


def mesh_jobs(paths: Sequence[str], labels: Optional[Sequence[str]], name: Optional[str] = None) -> List[MeshJob]:
    """The meshes to train with their names and labels. ``labels``: one file per mesh, in the meshes' order, or one
    folder holding ``<mesh name>.seg`` or ``.npy`` for each mesh; ``name`` (``--name``) only for a single mesh.

    Raises:
        InputError: --name with several meshes; two meshes of the same name; a labels count that fits neither rule.
    """
    if name is not None and len(paths) > 1:
        raise InputError(f"--name names one mesh; {len(paths)} meshes are given (each is named after its file)")
    names = [name] if name is not None else [os.path.splitext(os.path.basename(path))[0] for path in paths]
    first: Dict[str, str] = {}
    for mesh_name, path in zip(names, paths):
        if mesh_name in first:
            raise InputError(f"two meshes would share the folders '{mesh_name}': {first[mesh_name]} and {path} "
                             f"(rename one, or train them in separate runs with --name)")
        first[mesh_name] = path
    if not labels:
        mesh_labels: List[Optional[str]] = [None] * len(paths)
    elif len(labels) == 1 and os.path.isdir(labels[0]):
        mesh_labels = [_labels_in_folder(labels[0], mesh_name) for mesh_name in names]
    elif len(labels) == len(paths):
        mesh_labels = list(labels)
    else:
        raise InputError(f"--labels: give one file per mesh ({len(paths)} meshes, {len(labels)} files) or one folder "
                         f"holding <mesh name>.seg or .npy")
    return [MeshJob(path, mesh_name, mesh_label) for path, mesh_name, mesh_label in zip(paths, names, mesh_labels)]


def _labels_in_folder(folder: str, mesh_name: str) -> str:
    """The mesh's labels file in ``folder``: the first of <name>.seg, <name>.npy that exists (else the .seg path,
    whose absence the mesh then reports)."""
    candidates = [os.path.join(folder, mesh_name + extension) for extension in LABEL_FORMATS]
    return next((path for path in candidates if os.path.isfile(path)), candidates[0])


def segment_commands(settings: TrainRunSettings, job: MeshJob) -> Dict[str, List[str]]:
    """The commands that use a trained mesh: ``decoder.py --mode test`` (its clicks still to add) and
    ``interactive.py``, with the decoder flags the budget trained with."""
    from utils.paths import DECODER_CHECKPOINT_FILE

    workspace = _workspace(settings, job)
    test = ["python", "decoder.py", "--mode", "test", "--obj_path", job.obj_path, "--encoder_f_path",
            workspace.features, "--save_dir", workspace.decoder, "--model_name", DECODER_CHECKPOINT_FILE,
            *settings.budget.decoder_settings.changed_arguments()]
    click_aware = ["--click_aware", "1"] if settings.click_aware else []
    return {"segment": [*test, *click_aware, "--select_vertices", "<vertex>"],
            "browser": ["python", "interactive.py", *test[4:], *click_aware]}


def _workspace(settings: TrainRunSettings, job: MeshJob) -> MeshWorkspace:
    return MeshWorkspace(os.path.join(settings.data_root, job.name), os.path.join(settings.experiments_root, job.name))


def _print_now(message: str) -> None:
    print(f"\n{message}", flush=True)


def train_one_mesh(settings: TrainRunSettings, job: MeshJob, sam_teacher=None,
                   announce: Callable[[str], None] = _print_now) -> Dict:
    """Train one mesh (the stages it still lacks) and return its summary record: name, file, vertices, seconds, the
    features and decoder files and the commands that segment it. ``sam_teacher``: a SAM-family teacher built once
    for many meshes (None: built here when the teacher is ``sam``).

    Raises:
        InputError: a bad mesh or labels file, a missing checkpoint, a folder that cannot be written.
    """
    from models.build_teacher import build_teacher
    from utils.geometry.mesh_files import load_mesh
    from utils.runtime import resolve_device

    start = time.perf_counter()
    device = resolve_device(settings.device)
    mesh = load_mesh(job.obj_path)
    workspace = _workspace(settings, job)
    for folder, flag in ((os.path.join(settings.data_root, job.name), "--data_root"),
                         (workspace.root, "--experiments_root")):
        require_writable_folder(folder, flag)  # before the stages, not after minutes of them
    if settings.teacher == "label" or sam_teacher is None:
        teacher = build_teacher(settings.teacher, mesh, device, settings.sam_type, settings.sam_checkpoint,
                                job.labels, settings.seed, imperfect_masks=settings.imperfect_masks)
    else:
        teacher = sam_teacher
    announce(f"budget {settings.budget.name} on {mesh.num_vertices} vertices, teacher {teacher.description}; data in "
             f"{workspace.encoder_data} and {workspace.decoder_data}, results in {workspace.root}")
    train_mesh(mesh, teacher, workspace, settings.budget, settings.seed, device, keep_stage_data=True, progress=True,
               test_view=job.name, announce=announce)
    commands = segment_commands(settings, job)
    return {"name": job.name, "obj_path": job.obj_path, "labels": job.labels, "vertices": mesh.num_vertices,
            "seconds": round(time.perf_counter() - start, 1), "features": workspace.features,
            "decoder": workspace.checkpoint, "segment_command": shlex.join(commands["segment"]),
            "browser_command": shlex.join(commands["browser"])}


def failed_record(job: MeshJob, error: str) -> Dict:
    """The summary record of a mesh that could not be trained: its one-line error (printed too)."""
    tqdm.write(f"mesh {job.name}: not trained: {error}")
    return {"name": job.name, "obj_path": job.obj_path, "labels": job.labels, "error": error}


def train_mesh_task(settings: TrainRunSettings, job: MeshJob, sam_teacher=None) -> Dict:
    """One mesh of many (in this process, or as a Ray task: utils/pipeline/cluster.py): its record, or the record of
    why it could not be trained."""
    try:
        return train_one_mesh(settings, job, sam_teacher)
    except InputError as err:
        return failed_record(job, str(err))
    except OSError as err:  # the file system refused (a full disk, a folder gone): this mesh, not the others
        return failed_record(job, describe_os_error(err))


def train_meshes(settings: TrainRunSettings, jobs: Sequence[MeshJob], cluster: Optional[ClusterSettings] = None
                 ) -> List[Dict]:
    """Train every mesh — one after another in this process (a SAM-family teacher built once), or as Ray tasks when
    ``cluster`` asks for workers or a cluster — and return their records in the meshes' order; a mesh that fails is
    a record with its error, and the others go on."""
    if cluster is not None and cluster.distributed:
        by_name = {job.name: job for job in jobs}
        records = {}
        tasks = {name: (settings, job) for name, job in by_name.items()}
        sizes = file_sizes({name: job.obj_path for name, job in by_name.items()})
        for name, record, error in run_tasks(train_mesh_task, tasks, cluster,
                                             os.path.join(os.path.abspath(settings.experiments_root), "logs"), sizes,
                                             is_failure=lambda record: "error" in record):
            records[name] = record if error is None else failed_record(by_name[name], f"the task failed: {error}")
        return [records[job.name] for job in jobs]
    sam_teacher = None
    if settings.teacher == "sam":
        from models.build_teacher import build_sam_teacher
        from utils.runtime import resolve_device

        sam_teacher = build_sam_teacher(settings.sam_type, settings.sam_checkpoint, resolve_device(settings.device),
                                        settings.seed)
    records = []
    for number, job in enumerate(jobs, start=1):
        print(f"\n=== mesh {number} of {len(jobs)}: {job.name} ({job.obj_path})", flush=True)
        records.append(train_mesh_task(settings, job, sam_teacher))
    return records


def write_summary(settings: TrainRunSettings, records: Sequence[Dict]) -> str:
    """``<experiments_root>/train_summary.json``: the run's settings and every mesh's record; returns its path."""
    path = os.path.join(settings.experiments_root, SUMMARY_FILE)
    save_json({"budget": settings.budget.name, "teacher": settings.teacher,
               "SAM": settings.sam_type if settings.teacher == "sam" else None, "seed": settings.seed,
               "data_root": os.path.abspath(settings.data_root),
               "experiments_root": os.path.abspath(settings.experiments_root), "meshes": list(records)}, path)
    return path
