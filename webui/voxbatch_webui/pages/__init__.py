"""One module per page; each exposes a function that builds it inside the shared frame."""
