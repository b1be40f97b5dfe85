"""Pipeline stages that do no I/O: features, tracker, publish."""
