"""Provider clients: Ollama (local) and the cloud chat models."""
