"""User interfaces: the command line (and, later, the Chainlit chat app)."""
