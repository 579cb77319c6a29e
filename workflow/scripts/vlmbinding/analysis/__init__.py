"""Stage analysis: neuron statistics, superposition, separability, sharing, correlation."""
