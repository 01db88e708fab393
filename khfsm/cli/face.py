"""`khfsm face enroll` / `khfsm face verify`: the identity check on single photos."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np


@click.group()
def face() -> None:
    """Enroll a face or verify a photo against an enrolled one."""


@face.command()
@click.argument("photo", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the 192-value feature vector (.npy, float32, L2-normalised).",
)
@click.option(
    "--crop",
    "crop_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also save the face region as an image (evidence).",
)
def enroll(photo: Path, output: Path, crop_path: Path | None) -> None:
    """Compute the face feature vector of PHOTO (exactly one face) and save it."""
    from khfsm.vision.face import FaceError, load_face_analyzer

    image = _read_photo(photo)
    analyzer = load_face_analyzer()
    try:
        embedding = analyzer.embed(image)
        crop = analyzer.crop(image) if crop_path else None
    except FaceError as e:
        raise click.ClickException(f"{photo}: {e}") from e
    try:
        np.save(output, embedding, allow_pickle=False)
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror}") from e
    if crop_path is not None and crop is not None:
        from khfsm.vision.media import MediaError, write_image

        try:
            write_image(crop_path, crop)
        except MediaError as e:
            raise click.ClickException(str(e)) from e
    click.echo(f"enrolled {photo} -> {output} ({embedding.size} values)")


@face.command()
@click.argument("photo", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("enrolled", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(photo: Path, enrolled: Path, as_json: bool) -> None:
    """Compare the one face in PHOTO with an ENROLLED .npy vector.

    Exit status: 0 when accepted, 1 when rejected or on error.
    """
    from khfsm.vision.face import FaceError, load_face_analyzer

    try:
        reference = np.load(enrolled, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot read enrolled vector {enrolled}: {e}") from e
    image = _read_photo(photo)
    try:
        match = load_face_analyzer().verify(image, reference)
    except FaceError as e:
        raise click.ClickException(f"{photo}: {e}") from e
    if as_json:
        click.echo(
            json.dumps(
                {
                    "similarity": round(match.similarity, 6),
                    "accepted": match.accepted,
                    "threshold": match.threshold,
                }
            )
        )
    else:
        verdict = "accepted" if match.accepted else "rejected"
        relation = ">=" if match.accepted else "<"
        click.echo(
            f"{verdict}: similarity {match.similarity:.3f} {relation} threshold {match.threshold}"
        )
    if not match.accepted:
        raise SystemExit(1)


def _read_photo(path: Path) -> np.ndarray:
    from khfsm.vision.media import MediaError, read_image

    try:
        return read_image(path)
    except MediaError as e:
        raise click.ClickException(str(e)) from e
