"""Sample pools: generators and readers of input data sets."""
