"""Issue 4, first part: purge at contract end, retention, the register and the DPIA facts."""
