"""The display grid: any acquisition maps onto x->Left, y->Posterior, z->Superior exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mprviewer.model.orientation import PLANE_AXIS, DisplayGrid
from mprviewer.model.state import ViewerState

SIGNED_PERMUTATIONS = [
    (perm, signs)
    for perm in itertools.permutations(range(3))
    for signs in itertools.product((1.0, -1.0), repeat=3)
]


def _affine(perm: tuple[int, ...], signs: tuple[float, ...], spacing=(0.7, 0.9, 2.5),
            origin=(10.0, -20.0, 30.0)) -> np.ndarray:
    """Index axis a runs along patient axis perm[a] with sign signs[a]."""
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for a in range(3):
        affine[perm[a], a] = signs[a] * spacing[a]
    affine[:3, 3] = origin
    return affine


@settings(max_examples=60, deadline=None)
@given(
    choice=st.sampled_from(SIGNED_PERMUTATIONS),
    i=st.integers(0, 4), j=st.integers(0, 5), k=st.integers(0, 6),
)
def test_every_voxel_keeps_its_patient_position(choice, i: int, j: int, k: int) -> None:
    perm, signs = choice
    affine = _affine(perm, signs)
    array = np.arange(7 * 6 * 5).reshape(7, 6, 5)  # [k, j, i]
    grid = DisplayGrid.from_affine(affine, array.shape)
    shown = grid.display_array(array)
    x, y, z = grid.ijk_to_display((i, j, k)).astype(int)
    assert shown[z, y, x] == array[k, j, i]
    lps = (affine @ np.array([i, j, k, 1.0]))[:3]
    np.testing.assert_allclose(grid.display_to_lps((x, y, z)), lps, atol=1e-9)
    np.testing.assert_allclose(grid.display_to_ijk((x, y, z)), (i, j, k))
    np.testing.assert_allclose(grid.lps_to_display(lps), (x, y, z), atol=1e-9)


@pytest.mark.parametrize(("perm", "signs"), SIGNED_PERMUTATIONS)
def test_display_axes_run_toward_left_posterior_superior(perm, signs) -> None:
    grid = DisplayGrid.from_affine(_affine(perm, signs), (7, 6, 5))
    origin = grid.display_to_lps((0, 0, 0))
    for d in range(3):
        step = np.zeros(3)
        step[d] = 1.0
        delta = grid.display_to_lps(step) - origin
        assert delta[d] > 0, f"display axis {d} must point toward +LPS"
        assert np.count_nonzero(np.abs(delta) > 1e-9) == 1
    assert grid.obliquity_deg == 0.0


def test_sagittal_acquisition_is_the_acquisition_plane_and_maps_k_back() -> None:
    # Sagittal: rows run anterior->posterior (+y), columns inferior (-z), k toward the left (+x).
    affine = np.eye(4)
    affine[:3, 0] = (0, 1.0, 0)
    affine[:3, 1] = (0, 0, -1.0)
    affine[:3, 2] = (2.0, 0, 0)
    grid = DisplayGrid.from_affine(affine, (20, 30, 40))
    assert grid.acquisition_plane == "sagittal"
    assert grid.shape == (20, 40, 30)
    assert grid.acquisition_k("sagittal", 3) == 3
    assert grid.acquisition_k("axial", 3) is None
    assert grid.plane_index_of_k(3) == 3


def test_oblique_stack_reports_its_angle() -> None:
    angle = np.radians(20)
    affine = np.eye(4)
    affine[:3, 0] = (np.cos(angle), np.sin(angle), 0)
    affine[:3, 1] = (-np.sin(angle), np.cos(angle), 0)
    grid = DisplayGrid.from_affine(affine, (4, 4, 4))
    assert grid.obliquity_deg == pytest.approx(20.0, abs=1e-6)
    assert grid.is_oblique


def test_viewer_state_clamps_and_emits_only_changes() -> None:
    grid = DisplayGrid.from_affine(np.diag([1.0, 1.0, 2.0, 1.0]), (10, 20, 30))
    state = ViewerState(grid, window=(40, 400))
    seen: list[tuple[str, int]] = []
    state.slice_changed.connect(lambda plane, index: seen.append((plane, index)))
    assert state.slices == {"axial": 5, "coronal": 10, "sagittal": 15}
    state.set_slice("axial", 99)
    state.set_slice("axial", 99)
    state.step("coronal", -50)
    state.set_cursor((3.4, 7.6, 2.0))
    assert seen == [("axial", 9), ("coronal", 0), ("axial", 2), ("coronal", 8),
                    ("sagittal", 3)]
    assert state.cursor == (3, 8, 2)
    assert PLANE_AXIS["axial"] == 2
