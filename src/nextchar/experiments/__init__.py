"""Experiments that explain recurrent networks: each is a library function with a CLI command."""
