"""Training: losses, train state and optimizer, pmap'd steps, the epoch loop."""
