"""Training a model: the loop, the run's state, opening a run, its listeners, the run
directory, the resume format, several processes."""
