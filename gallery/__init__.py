"""App-side logic: cached model loading, the shared sidebar, and each family's views."""
