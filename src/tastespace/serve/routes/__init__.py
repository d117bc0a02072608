"""The API's routes, one module per group; ``deps`` holds what they share."""
