"""Audio I/O: encoding to every contract format, resampling, decoding reference clips."""
