"""The local models' lifecycle beyond one request: cool-downs, warm-up, loads in progress."""
