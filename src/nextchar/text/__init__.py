"""Text in: tokenizers, reading files and the built-in corpora, encoding once into flat id
tensors, batches, word vectors."""
