"""One real OpenGL render through VisPy (Xvfb + Mesa llvmpipe)."""
import numpy as np
import pytest

pytest.importorskip("vispy")


@pytest.mark.gl
def test_viewport_renders_a_mesh(qtbot):
    from widgets.viewport import Viewport3D

    vp = Viewport3D(bgcolor="black")
    qtbot.addWidget(vp)
    vp.resize(320, 240)
    vp.show()
    empty = vp.render_image()
    assert empty.shape[2] == 4
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
    vp.grid.visible = False
    vp.set_mesh(v, f, color=(1.0, 0.2, 0.2, 1.0))
    img = vp.render_image()
    red = (img[..., 0] > 120) & (img[..., 1] < 100)
    assert red.mean() > 0.05  # the quad covers a good part of the view
    assert (empty[..., 0] > 120).mean() < red.mean()
    assert vp.mesh_data[0].shape == (4, 3)
