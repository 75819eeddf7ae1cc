"""`hf-infer batch`: run a file of inputs through a running gateway, one JSONL result per line."""
