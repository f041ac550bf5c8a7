"""A training run's state on disk: written so that a kill or a full disk at any moment
leaves a state that resumes exactly, or is refused in one sentence naming the files.

The state of an unfinished run in ``out_dir`` is one unit of three files:

* ``best.weights.h5``, the kept epoch's checkpoint (:class:`StagedCheckpoint`);
* ``backup/latest.weights.h5``, the weights and optimizer state of the last backup,
  and ``backup/training_metadata.json``, its epoch and batch (the files Keras'
  ``BackupAndRestore`` reads; :class:`StateBackup` writes them);

tied by ``backup/manifest.json``: the backup's epoch and batch, the shapes of the
model's weights and the SHA-256 of each file.

**Commit.** Every file of the unit is first written whole under a staged name
beside it (``.staged.<name>``) and fsynced; then the manifest is written atomically
(:mod:`data_tools.atomic`): that is the commit; then the staged files are renamed
over their names. A kill before the manifest leaves the previous unit (the staged
files are dropped on the next start); a kill after it leaves the new one (the
renames are finished on the next start). A write that fails, a full disk included,
leaves the previous unit.

**Resume** (:meth:`TrainingState.recover`, before training starts). Leftover
temporary and staged files are removed or renamed into place as the manifest says;
then each file must have the checksum the manifest lists, the log ``train_log.csv``
must hold every epoch before the backup's (its rows from the backup's epoch on,
a row cut short by the kill among them, are dropped: those epochs run again), and
the model must have the weights' shapes the backup was written with. Anything
else is a :class:`TrainingStateError` naming the file: a backup is never resumed
from parts that do not belong together.

**One run per folder.** :func:`run_lock` holds ``out_dir/train.lock``, naming the
process and host, for as long as ``fit`` runs; a second run on the folder is refused
while that process lives, and a lock left by a killed process is taken over.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

import keras

from data_tools.atomic import atomic_path, atomic_write_text, fsync_file, fsync_folder
from zoo.common.run_card import BACKUP_DIR, TRAINING_CHECKPOINT

BACKUP_WEIGHTS_FILE = "latest.weights.h5"  # keras.callbacks.BackupAndRestore's names
BACKUP_METADATA_FILE = "training_metadata.json"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "train.lock"
MANIFEST_FORMAT = "medattn-zoo-training-state"
_STAGED = ".staged."
_DISCARDED = ".discarded-backup-"


class TrainingStateError(ValueError):
    """A run folder whose training state cannot be resumed; the message names the file."""


class RunLockedError(TrainingStateError):
    """Another live process trains into the same folder."""


def file_digest(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_shapes(model: keras.Model) -> list[list]:
    """What a backup must fit: the shape and dtype of each model weight, in order."""
    return [[list(weight.shape), str(weight.dtype)] for weight in model.weights]


class TrainingState:
    """The unit ``best.weights.h5`` + ``backup/`` of one run folder (module docstring)."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.backup_dir = self.out_dir / BACKUP_DIR
        self.best = self.out_dir / TRAINING_CHECKPOINT
        self.weights = self.backup_dir / BACKUP_WEIGHTS_FILE
        self.metadata = self.backup_dir / BACKUP_METADATA_FILE
        self.manifest = self.backup_dir / MANIFEST_FILE
        self.recorded_shapes: list | None = None  # the resumed backup's model
        self._committed: dict[str, str | None] = {}  # digests of the files now in place

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return self.best, self.weights, self.metadata

    @staticmethod
    def staged(path: Path) -> Path:
        """Where the next version of ``path`` is written before the commit (the name
        keeps its ``.weights.h5`` ending, which Keras requires)."""
        return path.with_name(_STAGED + path.name)

    def _name(self, path: Path) -> str:
        return path.relative_to(self.out_dir).as_posix()

    # ----------------------------------------------------------------- writing

    def commit(self, model: keras.Model, epoch: int, batch: int) -> None:
        """Backs up ``model`` as the state at ``epoch``/``batch`` together with the
        checkpoint staged since the last commit (if any), as one unit."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(self.staged(self.weights)), overwrite=True)
        atomic_write_text(self.staged(self.metadata), json.dumps({"epoch": epoch, "batch": batch}))
        digests = {}
        for path in self.files:
            staged = self.staged(path)
            if staged.is_file():
                fsync_file(staged)
                digests[self._name(path)] = file_digest(staged)
            else:
                digests[self._name(path)] = self._committed.get(self._name(path))
        manifest = {
            "format": MANIFEST_FORMAT,
            "epoch": epoch,
            "batch": batch,
            "weight_shapes": weight_shapes(model),
            "files": digests,
        }
        atomic_write_text(self.manifest, json.dumps(manifest, indent=1))  # the commit
        self._roll_forward()
        self._committed = digests

    def _roll_forward(self) -> None:
        for path in self.files:
            if self.staged(path).is_file():
                os.replace(self.staged(path), path)
        for folder in (self.out_dir, self.backup_dir):
            fsync_folder(folder)

    def discard(self) -> None:
        """Removes the backup of a finished run: renamed away first (one atomic step,
        so a kill never leaves half a backup), then deleted."""
        if self.backup_dir.is_dir():
            gone = Path(tempfile.mkdtemp(prefix=_DISCARDED, dir=self.out_dir))
            os.replace(self.backup_dir, gone / BACKUP_DIR)
            shutil.rmtree(gone)

    # ----------------------------------------------------------------- resuming

    def recover(self, log_path: Path) -> int | None:
        """Brings the folder to its last committed state and checks it.

        Returns:
            The epoch the backup resumes at, or ``None`` when there is no backup
            (a new run).

        Raises:
            TrainingStateError: the files do not agree (module docstring).
        """
        self._remove_leftovers()
        if not self.backup_dir.is_dir():
            self._drop_staged()
            return None
        manifest = self._read_manifest()
        if manifest is None:
            present = [path.name for path in (self.weights, self.metadata) if path.exists()]
            if present:
                raise TrainingStateError(
                    f"{self.backup_dir} holds {' and '.join(present)} but no {MANIFEST_FILE} to check them "
                    "against (a backup written by another program or an older version of zoo.train): it cannot "
                    f"be resumed safely; remove {self.backup_dir} to start the run over."
                )
            shutil.rmtree(self.backup_dir)  # killed before its first commit
            self._drop_staged()
            return None
        epoch = manifest["epoch"]
        for path in self.files:
            self._check_file(path, manifest["files"].get(self._name(path)), epoch)
        self._drop_staged()
        self._committed = dict(manifest["files"])
        self.recorded_shapes = manifest["weight_shapes"]
        keep_logged_epochs(log_path, epoch, self.manifest)
        return epoch

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest.is_file():
            return None
        try:
            manifest = json.loads(self.manifest.read_text(encoding="utf-8"))
            if manifest.get("format") != MANIFEST_FORMAT:
                raise ValueError
            int(manifest["epoch"]), dict(manifest["files"]), list(manifest["weight_shapes"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise TrainingStateError(
                f"{self.manifest} is not a {MANIFEST_FORMAT} manifest; remove {self.backup_dir} to start the run over."
            ) from None
        return manifest

    def _check_file(self, path: Path, digest: str | None, epoch: int) -> None:
        """Finishes an interrupted commit of ``path``, then checks its checksum."""
        staged = self.staged(path)
        if digest is None:  # not written yet when the backup was (no epoch had ended)
            return
        if staged.is_file() and file_digest(staged) == digest:
            os.replace(staged, path)
        elif not path.is_file():
            raise TrainingStateError(
                f"{path} is missing, but the backup of epoch {epoch} ({self.manifest}) needs "
                f"it; remove {self.backup_dir} to start the run over."
            )
        elif file_digest(path) != digest:
            raise TrainingStateError(
                f"{path} is not the file the backup of epoch {epoch} recorded in {self.manifest} (changed, cut "
                f"short or replaced since): the backup cannot be resumed; remove {self.backup_dir} to start "
                "the run over."
            )

    def _drop_staged(self) -> None:
        for path in self.files:
            self.staged(path).unlink(missing_ok=True)

    def _remove_leftovers(self) -> None:
        """Temporary files of writes cut short, and backups of finished runs whose
        deletion was cut short."""
        for folder, names in (
            (self.out_dir, (self.best.name, "train_log.csv")),
            (self.backup_dir, (self.weights.name, self.metadata.name, self.manifest.name)),
        ):
            for name in names:
                for leftover in folder.glob(f".{name}.*.tmp*"):
                    leftover.unlink(missing_ok=True)
                for leftover in folder.glob(f".{_STAGED}{name}.*.tmp*"):
                    leftover.unlink(missing_ok=True)
        for gone in self.out_dir.glob(f"{_DISCARDED}*"):
            shutil.rmtree(gone, ignore_errors=True)

    def check_model(self, model: keras.Model) -> None:
        """Refuses to resume a backup written for a model with other weights."""
        if self.recorded_shapes is None:
            return
        shapes = weight_shapes(model)
        if shapes != self.recorded_shapes:
            first = next(
                (index for index, (a, b) in enumerate(zip(shapes, self.recorded_shapes, strict=False)) if a != b),
                min(len(shapes), len(self.recorded_shapes)),  # the lists may differ in length: the shorter's end
            )
            raise TrainingStateError(
                f"{self.weights} is the backup of another model ({len(self.recorded_shapes)} weights; weight "
                f"{first} differs from this model's {len(shapes)}): choose another out_dir, or remove "
                f"{self.backup_dir} to train this model from the start."
            )


# --------------------------------------------------------------------------- the log


def log_lines(path: Path, text: str | None = None) -> tuple[str, list[tuple[int, str]]]:
    """A ``train_log.csv``'s header line and ``(epoch, line)`` per row, lines as written
    (``text``: the file's content, where already read).

    Raises:
        TrainingStateError: a row cut short (fewer fields than the header, or the last
            line without its line end: the process was killed while writing it).
    """
    if text is None:
        with open(path, newline="", encoding="utf-8") as file:
            text = file.read()
    lines = text.splitlines(keepends=True)
    if not lines:
        return "", []
    width = len(next(csv.reader([lines[0]])))
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        epoch = int(fields[0]) if fields and fields[0].isdigit() else None
        if not line.endswith("\n") or len(fields) != width or epoch is None:
            end = "" if line.endswith("\n") else ", no line end"
            raise TrainingStateError(
                f"{path}: line {number} is cut short ({len(fields)} of {width} fields{end}): the run was killed "
                "while logging an epoch; run it again to resume (the cut row is dropped), or delete that line."
            )
        rows.append((epoch, line))
    return lines[0], rows


def keep_logged_epochs(path: Path, epochs: int, manifest: Path) -> None:
    """Keeps the log rows of epochs ``0 .. epochs - 1`` (the last row of an epoch
    logged twice), which the resumed run appends to; drops the rest, a last row cut
    short by the kill included."""
    if not path.is_file():
        if epochs:
            raise TrainingStateError(
                f"{path} is missing, but the backup ({manifest}) is at epoch {epochs} and "
                f"needs the log of epochs 0 to {epochs - 1}; remove {manifest.parent} to "
                "start the run over."
            )
        return
    with open(path, newline="", encoding="utf-8") as file:
        text = file.read()
    whole = text[: text.rfind("\n") + 1]  # without a last row the kill cut short: never one the backup needs
    header, rows = log_lines(path, whole)
    kept = {epoch: line for epoch, line in rows if epoch < epochs}
    if sorted(kept) != list(range(epochs)):
        missing = sorted(set(range(epochs)) - set(kept))
        raise TrainingStateError(
            f"{path} lacks epoch(s) {missing}, which the backup ({manifest}) ran: the log and "
            f"the backup disagree; remove {manifest.parent} to start the run over."
        )
    kept_text = header + "".join(kept[epoch] for epoch in range(epochs))
    if kept_text != text:
        with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as file:
            file.write(kept_text)


# --------------------------------------------------------------------------- callbacks


class StagedCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` of ``best.weights.h5`` that writes to the staged name; the
    next :meth:`TrainingState.commit` puts it in place with the backup."""

    def __init__(self, state: TrainingState, **kwargs):
        super().__init__(str(state.best), save_weights_only=True, **kwargs)
        self.state = state

    def _save_model(self, epoch, batch, logs):
        final, self.filepath = self.filepath, str(self.state.staged(self.state.best))
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = final


class StateBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` writing through :meth:`TrainingState.commit`.

    Also: the backup is committed at every epoch end, with an integer ``save_freq``
    too (so the epoch's checkpoint is committed with it); a backup of another model
    is refused before loading; batch-level backups record the right epoch (Keras
    advances its epoch counter only at epoch ends and starts it at 0 in every
    process, so a backup written in the first epoch of a resumed run would claim
    epoch 0 and a second resume would start over).
    """

    def __init__(self, state: TrainingState, save_freq):
        super().__init__(str(state.backup_dir), save_freq=save_freq)
        self.state = state

    def on_train_begin(self, logs=None):
        self.state.check_model(self.model)
        try:
            super().on_train_begin(logs)
        except (OSError, ValueError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise TrainingStateError(
                f"{self.state.weights} cannot be loaded into this model ("
                f"{lines[0] if lines else type(error).__name__}); remove "
                f"{self.state.backup_dir} to start the run over."
            ) from None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._save_model()

    def _save_model(self):
        self.state.commit(self.model, self._current_epoch, self._last_batch_seen)

    def on_train_end(self, logs=None):
        self.state.discard()


# --------------------------------------------------------------------------- the lock

_HELD: set[Path] = set()


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[Path]:
    """Holds ``out_dir/train.lock`` (process id and host) while the block runs.

    Raises:
        RunLockedError: a live process (or one on another host, which cannot be
            checked) holds the lock.
    """
    path = Path(out_dir) / LOCK_FILE
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    written = path.with_name(f".{LOCK_FILE}.{os.getpid()}")
    written.write_text(mine, encoding="utf-8")
    try:
        for _ in range(2):
            try:
                os.link(written, path)  # creates the lock with its content in one step, or fails
                break
            except FileExistsError:
                _refuse_if_held(path)
                path.unlink(missing_ok=True)  # a killed process's lock
        else:
            _refuse_if_held(path)
    finally:
        written.unlink(missing_ok=True)
    _HELD.add(path.resolve())
    try:
        yield path
    finally:
        _HELD.discard(path.resolve())
        path.unlink(missing_ok=True)


def _refuse_if_held(path: Path) -> None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        raise RunLockedError(f"{path} is not a lock of zoo.train; remove it if no run uses {path.parent}.") from None
    if host == socket.gethostname():
        if pid == os.getpid():
            alive = path.resolve() in _HELD
        else:
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
        if not alive:
            return
    raise RunLockedError(
        f"{path.parent} is in use by process {pid} on {host} (lock {path}): two runs writing one folder would "
        f"mix their files; wait for that run to end or choose another out_dir (remove {path} if that process "
        "is gone)."
    )
