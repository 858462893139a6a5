"""One module per measured item of the benchmark."""
