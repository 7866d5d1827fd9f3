"""Benchmark data: CT series written deterministically into a cache folder, reused when present.

The pixel values come from the CT phantom plus seeded noise, so JPEG 2000 compresses them the
way it compresses real CT (neither trivially nor not at all), and two machines generating the
same dataset get identical files. A dataset folder is complete when its stamp file matches the
spec; an interrupted or outdated folder is rewritten.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO / "bench-data"
FORMAT_VERSION = 1  # bump when the way files are written changes

EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark series: its size (slices, rows, columns), encoding and seed."""

    name: str
    shape: tuple[int, int, int]
    transfer_syntax: str = EXPLICIT_LE
    spacing: tuple[float, float, float] = (1.0, 0.7, 0.7)  # slice, row, column (mm)
    seed: int = 8

    @property
    def label(self) -> str:
        nk, nj, ni = self.shape
        kind = "JPEG 2000 lossless" if self.transfer_syntax == JPEG2000_LOSSLESS else "uncompressed"
        return f"{ni}x{nj}x{nk} {kind}"

    @property
    def compressed(self) -> bool:
        return self.transfer_syntax != EXPLICIT_LE

    @property
    def volume_bytes(self) -> int:
        """Bytes of the volume as int16 HU (what a loader should end up holding)."""
        nk, nj, ni = self.shape
        return nk * nj * ni * 2


FULL = [
    DatasetSpec("ct-512x512x300", (300, 512, 512)),
    DatasetSpec("j2k-512x512x60", (60, 512, 512), JPEG2000_LOSSLESS),
]
LARGE = DatasetSpec("ct-512x512x1000", (1000, 512, 512), spacing=(0.5, 0.7, 0.7))
QUICK = [
    DatasetSpec("quick-ct-256x256x60", (60, 256, 256), spacing=(2.0, 1.4, 1.4)),
    DatasetSpec("quick-j2k-256x256x12", (12, 256, 256), JPEG2000_LOSSLESS, spacing=(2.0, 1.4, 1.4)),
]


def _stamp_text(spec: DatasetSpec) -> str:
    return json.dumps({"format": FORMAT_VERSION, **asdict(spec)}, sort_keys=True)


def _stamp_path(folder: Path) -> Path:
    """Next to the folder, not in it: the readers under test scan every file in the folder."""
    return folder.with_name(folder.name + ".complete.json")


def is_complete(folder: Path, spec: DatasetSpec) -> bool:
    stamp = _stamp_path(folder)
    return stamp.is_file() and stamp.read_text() == _stamp_text(spec)


def hu_volume(spec: DatasetSpec) -> np.ndarray:
    """The phantom in HU (int16, [k, j, i]) with noise: what every loader must return."""
    from mprviewer.synthetic.phantom import add_noise, ct_phantom

    return add_noise(ct_phantom(spec.shape, spec.spacing), sigma=12.0, seed=spec.seed)


def ensure_dataset(spec: DatasetSpec, root: Path = DEFAULT_ROOT, log=print) -> Path:
    """The folder holding ``spec``'s files, written first if missing or outdated."""
    folder = Path(root) / spec.name
    if is_complete(folder, spec):
        return folder
    from mprviewer.synthetic import writer as synthetic

    if spec.transfer_syntax not in synthetic.encodable_syntaxes():
        raise RuntimeError(
            f"cannot write {spec.label}: no encoder for {spec.transfer_syntax} is installed "
            "(pylibjpeg-openjpeg provides JPEG 2000)"
        )
    log(f"writing {spec.label} into {folder} ...")
    _stamp_path(folder).unlink(missing_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    hu = hu_volume(spec)
    dz, dy, dx = spec.spacing
    nk, nj, ni = spec.shape
    synthetic.write_series(
        folder,
        hu,
        origin=(-(ni - 1) * dx / 2, -(nj - 1) * dy / 2, -(nk - 1) * dz),
        pixel_spacing=(dy, dx),
        slice_spacing=dz,
        rescale=(1, -1024),
        signed=False,
        bits_stored=12,
        window=(40, 400),
        transfer_syntax=spec.transfer_syntax,
        shuffle=spec.seed,
        seed=f"bench-{spec.name}",
        description=f"benchmark {spec.label}",
    )
    _stamp_path(folder).write_text(_stamp_text(spec))
    return folder


def dicom_files(folder: Path) -> list[Path]:
    """The dataset's DICOM files, in directory order."""
    return [p for p in Path(folder).iterdir() if p.is_file()]
