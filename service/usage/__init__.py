"""The usage ledger: what each key spent, per model and per day (ledger.py), and `hf-infer usage`."""
