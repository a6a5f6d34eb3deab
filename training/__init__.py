"""What train_and_val.py is built from: its inputs (images or cached codes), hooks, learning-rate
schedules, summaries, warm start from another run, the distributed runtime, and a run's folder
(runs: checkpoints, config.json, best/, eval/), which the other programs read too."""
