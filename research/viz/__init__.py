"""Figures and tables describing the data and the results (matplotlib/seaborn, no pyplot state)."""
