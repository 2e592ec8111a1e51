"""Attack corpus: recipes for bad AS4 messages and the answer each must get (see cases.py)."""
