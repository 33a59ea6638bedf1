"""The neural parts: recurrent cells, encoder, attention, decoder and the whole encoder-decoder."""
