"""The Sweep tab as a view: samples to solve over a grid of settings, trained in parallel processes; a run
clicked on its map opens in the window."""

from __future__ import annotations

from explorer import settings
from explorer.panels.sweep import SweepPanel
from explorer.views import TabView, ViewContext

TITLE = "Sweep"
TOOLTIP = "Samples to solve over a grid of settings, trained in parallel processes or on a Dask cluster"


def view(context: ViewContext) -> TabView:
    panel = SweepPanel(settings.store())
    open_run = getattr(panel, "sigOpenRun", None)  # a run clicked on the sweep's map (where the panel offers it)
    if open_run is not None:
        open_run.connect(context.load_trainer)
    return TabView(TITLE, panel, TOOLTIP, on_shutdown=panel.shutdown)
