"""The report's sections, one module each: the headline, the comparison, the reference tables,
training, and each built-in scenario's own (``server``, ``dataset``), which its declaration names."""
