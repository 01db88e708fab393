"""Pose and face inference on the bundled ONNX models (MediaPipe 0.10.21 parity).

Importing this package is cheap; ONNX Runtime and the models are loaded only by
`load_pose_models()` / `load_face_analyzer()` (once per process).
"""
