"""`khfsm pose IMAGE_OR_VIDEO`: run the pose pipeline and show or print what it sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from khfsm.vision.pose import PoseEstimate, PoseTracker


@click.command()
@click.argument("source", metavar="IMAGE_OR_VIDEO", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--draw",
    "draw_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the input with the skeleton drawn over it (out.png for a photo, out.mp4 "
    "for a video).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"landmarks": [[x, y, z, visibility, presence], ...]} (x, y in pixels); '
    "one such line per frame for a video, with a frame index and null when nobody is found.",
)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop a video after N frames.")
@click.option("--show-roi", is_flag=True, help="Also draw the crop the landmark model sees.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Intra-op threads."
)
def pose(
    source: Path,
    draw_path: Path | None,
    as_json: bool,
    max_frames: int | None,
    show_roi: bool,
    threads: int,
) -> None:
    """Show what the pose model sees in IMAGE_OR_VIDEO."""
    from khfsm.vision.media import MediaError, looks_like_image
    from khfsm.vision.pose import PoseTracker, load_pose_models

    if not looks_like_image(source):
        check_video(source)  # before the models load: a wrong file is said at once
    tracker = PoseTracker(load_pose_models(threads=threads))
    try:
        if looks_like_image(source):
            _photo(tracker, source, draw_path, as_json, show_roi)
        else:
            _video(tracker, source, draw_path, as_json, max_frames, show_roi)
    except MediaError as e:
        raise click.ClickException(str(e)) from e


def check_video(source: Path) -> None:
    """`ClickException` in plain words unless `source` is a file with a video stream."""
    import av

    from khfsm.vision.media import IMAGE_SUFFIXES

    if not source.is_file():
        raise click.ClickException(f"{source}: no such file")
    images = ", ".join(sorted(IMAGE_SUFFIXES))
    try:
        with av.open(str(source)) as container:
            has_video = bool(container.streams.video)
    except (av.error.FFmpegError, UnicodeDecodeError):
        raise click.ClickException(
            f"{source} is not a video: FFmpeg cannot read it. khfsm pose takes a video "
            f"(e.g. .mp4) or an image ({images})"
        ) from None
    if not has_video:
        raise click.ClickException(f"{source} has no video stream (sound only?)")


def _photo(
    tracker: PoseTracker, source: Path, draw_path: Path | None, as_json: bool, show_roi: bool
) -> None:
    from khfsm.vision.draw import draw_pose
    from khfsm.vision.media import read_image, write_image

    image = read_image(source)
    estimate = tracker.process(image)
    if draw_path is not None:
        # The ROI drawn is the one the landmarks were cropped with, rebuilt from them.
        write_image(draw_path, draw_pose(image, estimate, tracker.roi if show_roi else None))
    if as_json:
        click.echo(json.dumps(_landmarks_json(estimate)))
    elif estimate is None:
        click.echo(f"{source}: no person found")
    else:
        click.echo(f"{source}: person found, presence {estimate.score:.3f}")
        if draw_path is not None:
            click.echo(f"drawing written to {draw_path}")


def _video(
    tracker: PoseTracker,
    source: Path,
    draw_path: Path | None,
    as_json: bool,
    max_frames: int | None,
    show_roi: bool,
) -> None:
    from contextlib import ExitStack

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from khfsm.vision.draw import draw_pose
    from khfsm.vision.media import VideoWriter, open_video

    found = total = 0
    with ExitStack() as stack:
        info, frames = stack.enter_context(open_video(source))
        writer = None
        if draw_path is not None:
            writer = stack.enter_context(VideoWriter(draw_path, info.fps, info.width, info.height))
        expected = min(info.frame_count or max_frames or 0, max_frames or info.frame_count or 0)
        progress = stack.enter_context(
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                # stderr, so that --json output on stdout stays machine-readable.
                console=Console(stderr=True),
                transient=as_json,
            )
        )
        task = progress.add_task(source.name, total=expected or None)
        for index, frame in enumerate(frames):
            if max_frames is not None and index >= max_frames:
                break
            roi = tracker.roi
            # The same pixels as a live lane's for the same picture (its planes, see
            # khfsm.vision.picture): on a session's recording, the stored keypoints.
            estimate = tracker.process(frame.for_pose())
            total += 1
            found += estimate is not None
            if writer is not None:
                # Draw the ROI this frame was cropped with (None: it ran the detector).
                writer.write(draw_pose(frame.bgr(), estimate, roi if show_roi else None))
            if as_json:
                click.echo(json.dumps({"frame": index, **_landmarks_json(estimate)}))
            progress.advance(task)
    if total == 0:
        raise click.ClickException(f"{source}: the video has no frames")
    if not as_json:
        click.echo(f"{source}: person found in {found}/{total} frames ({found / total:.1%})")
        if draw_path is not None:
            click.echo(f"drawing written to {draw_path}")


def _landmarks_json(estimate: PoseEstimate | None) -> dict[str, Any]:
    if estimate is None:
        return {"landmarks": None}
    return {"landmarks": [[round(float(v), 4) for v in row] for row in estimate.landmarks]}
