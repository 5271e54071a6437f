"""Pictures (gankit.images): grids, scatter and line plots, GIFs, atomic saves."""

import numpy as np
import pytest
from PIL import Image

from gankit.images import image_grid, line_plot, save_gif, save_picture, scatter_plot


def test_a_grid_places_each_image_in_its_cell_row_major_with_white_padding():
    images = np.stack([np.full((4, 4, 1), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = np.asarray(image_grid(images, columns=3, padding=2, min_cell=4))  # no upscaling
    assert grid.shape == (2 * (4 + 2) + 2, 3 * (4 + 2) + 2)  # 2 rows of 3 columns
    for i in range(5):
        r, c = divmod(i, 3)
        top, left = 2 + r * 6, 2 + c * 6
        assert (grid[top : top + 4, left : left + 4] == 10 * (i + 1)).all()
    assert (grid[8:12, 14:18] == 255).all()  # the sixth cell is empty
    assert (grid[0:2] == 255).all()  # padding


def test_a_grid_is_square_by_default_and_upscaled_to_the_minimum_cell():
    images = np.zeros((9, 8, 8, 3), np.uint8)
    picture = image_grid(images, min_cell=48)
    assert picture.mode == "RGB" and picture.size == ((3 * 10 + 2) * 6, (3 * 10 + 2) * 6)
    with pytest.raises(ValueError, match="expected uint8"):
        image_grid(images.astype(np.float32))


def test_scatter_plot_draws_points_over_the_reference():
    points, reference = np.array([[0.0, 0.0]]), np.random.default_rng(0).normal(size=(200, 2)) * 3
    picture = np.asarray(scatter_plot(points, reference, size=128))
    assert picture.shape == (128, 128, 3)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert (255, 255, 255) in colours and len(colours) >= 3  # background, reference and the point


def test_line_plot_keeps_its_size_and_draws_the_curves():
    picture = line_plot({"d_loss": ([1, 2, 3], [1.0, 0.5, 0.25])}, "losses", size=(300, 150))
    assert picture.size == (300, 150)
    assert len(np.unique(np.asarray(picture).reshape(-1, 3), axis=0)) > 2


def test_save_picture_writes_the_format_of_the_suffix_and_a_gif_holds_every_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), (v, 0, 0)) for v in (0, 100, 200)]
    save_picture(frames[1], tmp_path / "a" / "one.png")
    with Image.open(tmp_path / "a" / "one.png") as saved:
        assert saved.format == "PNG" and saved.getpixel((0, 0)) == (100, 0, 0)
    assert list((tmp_path / "a").iterdir()) == [tmp_path / "a" / "one.png"]  # no temporary file left behind
    save_gif(frames, tmp_path / "f.gif")
    with Image.open(tmp_path / "f.gif") as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0
