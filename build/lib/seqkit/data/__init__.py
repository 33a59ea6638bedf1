"""Reading text, tokenizing it with SentencePiece, and cutting it into padded batches."""
