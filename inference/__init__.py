"""Using a trained network: ready to classify (serving), as TensorFlow Lite (tflite), its cached
codes for transfer learning (codes) and their projector files, and evaluate.py's report
(reports)."""
