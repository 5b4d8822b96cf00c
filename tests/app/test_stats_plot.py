"""The Engine dock's throughput plot: one line per task over the last minute, plain axis numbers."""
from widgets.stats_plot import ThroughputPlot


def test_throughput_plot_keeps_the_last_minute_on_a_fixed_axis(qtbot):
    plot = ThroughputPlot(span_s=60.0)
    qtbot.addWidget(plot)
    for k in range(5):
        plot.add_point("speech frames/s", 300 + k, t=100.0 + 0.03 * k)  # a 0.12 s job
    plot.add_point("shape tokens/s", 80.0, t=100.2)
    assert plot.data("speech frames/s").shape == (5, 2)
    assert set(plot.curves) == {"speech frames/s", "shape tokens/s"}
    (x0, x1), _ = plot.getViewBox().viewRange()
    assert (x0, x1) == (-60.0, 0.0)  # a short job does not rescale the time axis
    assert plot.getAxis("bottom").autoSIPrefix is False
    plot.add_point("speech frames/s", 310, t=200.0)  # a minute later the old points leave the plot
    xs, _ = plot.curves["speech frames/s"].getData()
    assert len(xs) == 1 and xs[0] == 0.0
