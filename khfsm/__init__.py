"""khfsm: the assessment server behind AI-proctored fitness tests."""

__version__ = "0.1.0"
