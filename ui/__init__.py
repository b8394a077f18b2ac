"""User interfaces: the `modelyard` command line and the Chainlit chat app."""
