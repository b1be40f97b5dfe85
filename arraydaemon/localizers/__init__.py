"""Direction-of-arrival estimators behind one protocol and one registry of names (see base.py)."""
