"""The only code that speaks HTTP to the Hugging Face upstream."""
