"""Whether the pipeline can run a profile with some options, decided before anything is built.

:func:`check_runnable` is the one check every entry uses — ``profile check``, ``config check``, the
flags of ``replay``/``demo``/``run``, a reload, and :class:`~arraydaemon.pipeline.Pipeline` itself —
so a setting that passes a check is one the pipeline runs. It checks each setting's bounds, then the
quantities derived from them that the stages would allocate or divide by: the band's bins at the
profile's sample rate, the frame and hop sizes in samples, the direction grid's size and its lag
tables. Cheap: no array is allocated, nothing heavier than numpy is imported.
"""

from __future__ import annotations

from arraydaemon.core.errors import UserError
from arraydaemon.core.grids import grid_points
from arraydaemon.core.options import FrameLayout, PipelineOptions
from arraydaemon.core.profiles import ArrayProfile

MAX_GRID_POINTS = 20_000  # directions scanned per window (a 1.45° sphere; a planar array's 0.1° ring is 3 600)
MAX_LAG_ENTRIES = 4_000_000  # grid directions × mic pairs in the scan's lag table


def check_runnable(profile: ArrayProfile, options: PipelineOptions) -> FrameLayout:
    """The frame layout of ``options`` at ``profile``'s rate; UserError (one line, naming the setting)
    when the pipeline could not be built or run with them."""
    try:
        options.features.validate()
        options.localizer.validate()
        options.tracker.validate()
        layout = FrameLayout.from_config(options.features, profile.sample_rate)
    except ValueError as exc:
        raise UserError(f"profile '{profile.name}': {exc}") from None
    loc = options.localizer
    points = grid_points(profile.geometry.kind, loc.resolution_deg, loc.sphere_points)
    if points > MAX_GRID_POINTS:
        raise UserError(f"profile '{profile.name}': a {profile.geometry.kind} grid at {loc.resolution_deg:g}° holds "
                        f"{points} directions (at most {MAX_GRID_POINTS}: use a coarser --resolution)")
    pairs = profile.num_mics * (profile.num_mics - 1) // 2
    if points * pairs > MAX_LAG_ENTRIES:
        raise UserError(f"profile '{profile.name}': {points} directions × {pairs} mic pairs is too large a scan "
                        f"(at most {MAX_LAG_ENTRIES}: use a coarser --resolution)")
    return layout
