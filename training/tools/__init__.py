"""Small offline measurement tools (run as `python -m training.tools.<name>`)."""
