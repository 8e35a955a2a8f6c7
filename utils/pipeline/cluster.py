"""Many meshes at once: each mesh one Ray task, on a local Ray the command starts or on a cluster it joins.

iSeg trains per mesh, and meshes are independent, so the unit of work is a mesh: a task runs a mesh's whole
pipeline (its stages resumable as in a sequential run, utils/pipeline/runner.py) and writes its results to the output
folder, which every machine of a cluster must see at the same path (a shared file system; the driver only collects
what the tasks return for its reports). Ray schedules the tasks by their declared resources — ``cpus`` CPUs each, and
one GPU each with ``--device cuda`` — retries a task whose worker died (the retry resumes from the mesh's finished
stages) and gives each worker ``cpus`` torch threads.

The thread count sets the order of additions in matrix products, so a task's files equal a sequential run's bit for
bit when that run used the same number of threads (``OMP_NUM_THREADS=<cpus>``); with another count the last bits
differ from the first step on and training compounds them: the weights differ, and so can the segment of an
ambiguous click (benchmarks/scale_out.py measures by how much). Ray is imported only here and only when
``--workers`` > 1 or ``--ray_address`` is given: everything else runs without it installed.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from tqdm import tqdm

from utils.errors import InputError

RAY_REQUIREMENT = "ray>=2.50,<3"
# a task whose worker process died (killed, out of memory, a machine lost) is run again this many times
TASK_RETRIES = 3


@dataclass(frozen=True)
class ClusterSettings:
    """``--workers`` (meshes at once; 1 = in-process, no Ray), ``--ray_address`` (an existing cluster's address;
    None = a local Ray started for the command) and ``--cpus_per_worker`` (None = this machine's cores / workers)."""

    workers: int = 1
    address: Optional[str] = None
    cpus_per_worker: Optional[int] = None
    gpu: bool = False

    @property
    def distributed(self) -> bool:
        return self.workers > 1 or self.address is not None

    @property
    def cpus(self) -> int:
        if self.cpus_per_worker is not None:
            return self.cpus_per_worker
        return max(1, (os.cpu_count() or 1) // self.workers)


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"--workers and --ray_address need Ray, which is not installed: pip install "
                         f"'{RAY_REQUIREMENT}' (bash install_environment.sh installs it)") from None
    return ray


def connect(settings: ClusterSettings):
    """Start a local Ray with ``workers × cpus`` CPUs, or join the cluster at ``settings.address``; returns ray."""
    ray = import_ray()
    options = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                   runtime_env={"env_vars": {"PYTHONPATH": _project_root()}})
    try:
        if settings.address is not None:
            ray.init(address=settings.address, **options)
        else:
            cores = os.cpu_count() or 1
            if settings.workers * settings.cpus > cores:  # measured: a mesh 8x slower with 2 x 2 threads on 2 cores
                tqdm.write(f"warning: {settings.workers} workers x {settings.cpus} CPUs = "
                           f"{settings.workers * settings.cpus} threads on {cores} cores: they will wait for each "
                           f"other (several times slower); use --workers x --cpus_per_worker <= {cores}")
            ray.init(num_cpus=settings.workers * settings.cpus, num_gpus=settings.workers if settings.gpu else 0,
                     **options)
    except Exception as err:  # a wrong address, a cluster of another Ray version, no room for the local one
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f"the Ray cluster at {settings.address}" if settings.address else "a local Ray"
        raise InputError(f"could not start or join {where}: {first}") from None
    return ray


def _project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_logged(function: Callable[..., Any], threads: int, log_path: str, arguments: Tuple) -> Any:
    """In a worker: ``function(*arguments)`` with ``threads`` torch threads, its output (tqdm bars, prints) appended
    to ``log_path``."""
    import torch

    torch.set_num_threads(threads)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}, {threads} thread(s)", flush=True)
        return function(*arguments)


def run_tasks(function: Callable[..., Any], tasks: Dict[str, Tuple], settings: ClusterSettings, log_dir: str,
              sizes: Optional[Dict[str, float]] = None, is_failure: Callable[[Any], bool] = lambda result: False
              ) -> Iterator[Tuple[str, Optional[Any], Optional[str]]]:
    """Run ``function(*arguments)`` for each named task of ``tasks`` as a Ray task, as many at once as the cluster
    has room for; yields (name, result, None) as each finishes, or (name, None, error line) for one that failed
    after its retries. One progress bar counts running, done and failed tasks; each task's output goes to
    ``log_dir/<name>.log``. ``function`` must be importable by the workers (a module-level function).

    ``sizes`` (e.g. each mesh file's bytes): the largest tasks are handed out first, so that a long one does not
    start last while the other workers sit idle (the longest-first rule); without it, in the order given.
    ``is_failure(result)``: whether a task that returned counts as failed on the bar (a mesh that reported its error).
    """
    if sizes is not None:
        tasks = dict(sorted(tasks.items(), key=lambda item: -sizes.get(item[0], 0.0)))
    ray = connect(settings)
    # a scheduler's SIGTERM (a job's time limit, a preemption) stops the run as Ctrl-C does: the local Ray is shut
    # down and its processes end with the command, instead of outliving it
    with _terminate_as_interrupt():
        try:
            remote = ray.remote(num_cpus=settings.cpus, num_gpus=1 if settings.gpu else 0,
                                max_retries=TASK_RETRIES)(_run_logged)
            names = {remote.remote(function, settings.cpus, os.path.join(log_dir, f"{name}.log"), arguments): name
                     for name, arguments in tasks.items()}
            pending = list(names)
            done = failed = 0
            bar = tqdm(total=len(pending), desc="meshes", unit="mesh")
            while pending:
                bar.set_postfix(running=min(len(pending), _task_slots(ray, settings)), done=done, failed=failed)
                finished, pending = ray.wait(pending, num_returns=1)
                reference = finished[0]
                try:
                    result, error = ray.get(reference), None
                    failed, done = (failed + 1, done) if is_failure(result) else (failed, done + 1)
                except ray.exceptions.RayError as err:
                    result, error = None, _task_error(err)
                    failed += 1
                bar.update(1)
                yield names[reference], result, error
            bar.set_postfix(running=0, done=done, failed=failed)
            bar.close()
        finally:
            ray.shutdown()


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread for the block (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def file_sizes(paths: Dict[str, str]) -> Dict[str, float]:
    """{name: bytes of its file} (0 for a file that cannot be read: it fails fast anyway), for ``run_tasks``'
    ``sizes``."""
    sizes = {}
    for name, path in paths.items():
        try:
            sizes[name] = float(os.path.getsize(path))
        except OSError:
            sizes[name] = 0.0
    return sizes


def _task_slots(ray, settings: ClusterSettings) -> int:
    cpus = ray.cluster_resources().get("CPU", settings.cpus)
    return max(1, int(cpus // settings.cpus))


def _task_error(err: BaseException) -> str:
    """One line for a task that failed: the task's own exception where there is one, else Ray's words."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text[:300]}"

