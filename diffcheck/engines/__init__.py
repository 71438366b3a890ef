"""The derivative engines: symbolic (SymPy), forward (duals), reverse (tape), finite
differences, and the JAX reference (imported only when asked for)."""
