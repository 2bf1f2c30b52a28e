"""Training the tokenizer: corpus sampling, losses, the training loop, export of the shipped model."""
