"""What every program shares: its flags and main() trap (cli), the JSON files it writes
(json_files), progress lines and bars (progress), and where and how the graph runs (devices)."""
