"""Controls: the pixel baseline, the beyond-pixels test, the sanity table and its verdicts."""
