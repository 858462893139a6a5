"""The HTTP side: the FastAPI app factory, the JSON API and the console pages."""
