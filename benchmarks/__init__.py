"""benchmark.py's measurements, a module a kind: the default table (step), --summaries
(summary_cost), --scale (scaling), --transfer, --tflite (lite), --bandwidth; and the measuring
tools they share (measure)."""
