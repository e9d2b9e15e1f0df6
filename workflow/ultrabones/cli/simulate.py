"""``ultrabones simulate``: write a simulated cohort, specimen, sweep or recording."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``simulate`` subcommand."""
    p = sub.add_parser(
        "simulate", help="simulate a tracked-ultrasound cohort with truth"
    )
    p.add_argument("--preset", required=True, help="cohort size: tiny or paper")
    p.add_argument("--seed", type=int, required=True, help="cohort seed")
    p.add_argument("--out", required=True, help="cohort folder")
    p.add_argument("--specimen", help="only this specimen (e.g. S01)")
    p.add_argument("--sweep", help="only this sweep of --specimen (e.g. tibia-1)")
    p.add_argument("--recording", help="only this calibration recording (zcal)")
    p.add_argument("--errors", default="paper", help="error model: paper or none")
    p.add_argument("--frames", type=int, help="frames per sweep (default: preset's)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Dispatch to cohort, specimen, sweep or recording simulation."""
    from pathlib import Path

    from ..errors import ConfigError, InputDataError
    from ..simulate import cohort

    preset = cohort._check(
        args.preset, args.specimen, args.sweep, args.frames, args.errors
    )
    if args.sweep and not args.specimen:
        raise ConfigError("--sweep needs --specimen")
    if args.recording is not None and args.recording != "zcal":
        raise ConfigError(f"unknown recording {args.recording!r}; expected zcal")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").touch()
        (out / ".write-test").unlink()
    except OSError as err:
        raise InputDataError(f"{out}: output folder is not writable ({err})") from err
    common = {"preset": preset, "seed": args.seed, "errors": args.errors}
    if args.recording:
        cohort.simulate_recording_or_warn(out, recording=args.recording, **common)
    elif args.sweep:
        cohort.simulate_sweep(
            out, specimen=args.specimen, sweep=args.sweep, frames=args.frames, **common
        )
    elif args.specimen:
        cohort.simulate_specimen(out, specimen=args.specimen, **common)
    else:
        cohort.simulate_cohort(out, frames=args.frames, **common)
    return 0
