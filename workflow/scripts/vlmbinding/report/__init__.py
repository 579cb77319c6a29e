"""The report: figures and HTML pages."""
