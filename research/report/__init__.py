"""The portfolio report: read-only access to results/ for report/portfolio.qmd, and the renderer
used where Quarto is not installed. Imports no model, training or evaluation code."""
