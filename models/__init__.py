"""The bundled ONNX models, their manifest and NOTICE, installed as `khfsm.models` (package
data, so a wheel carries them); `convert.py` regenerates them (`python models/convert.py`)."""
