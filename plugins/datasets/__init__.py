"""Built-in dataset plugins: native readers and the synthetic chest X-ray world."""
